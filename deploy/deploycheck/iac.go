package deploycheck

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// HTTPProxyConfig is the JSON file `az aks create/update --http-proxy-config`
// reads.
type HTTPProxyConfig struct {
	HTTPProxy  string   `json:"httpProxy"`
	HTTPSProxy string   `json:"httpsProxy"`
	NoProxy    []string `json:"noProxy"`
	TrustedCA  string   `json:"trustedCa"`
}

// CheckHTTPProxyConfig decodes the AKS http-proxy-config file strictly and
// checks that it points at the endpoint and keeps the required entries off
// the proxy.
func CheckHTTPProxyConfig(file string, ep netip.AddrPort) error {
	data, err := os.ReadFile(file)
	if err != nil {
		return fmt.Errorf("read http-proxy-config: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var c HTTPProxyConfig
	if err := dec.Decode(&c); err != nil {
		return fmt.Errorf("%s: decode: %w", file, err)
	}
	var errs []error
	for k, v := range map[string]string{"httpProxy": c.HTTPProxy, "httpsProxy": c.HTTPSProxy} {
		if got, err := ProxyEndpoint(strings.TrimSuffix(v, "/")); err != nil || got != ep {
			errs = append(errs, fmt.Errorf("%s: %s is %q, want http://%s/ (the private endpoint)", file, k, v, ep))
		}
	}
	if m := MissingNoProxy(c.NoProxy); len(m) > 0 {
		errs = append(errs, fmt.Errorf("%s: noProxy lacks %s", file, strings.Join(m, ",")))
	}
	if c.TrustedCA == "" {
		errs = append(errs, fmt.Errorf("%s: trustedCa is empty: nodes and pods would not trust the inspection CA", file))
	}
	return errors.Join(errs...)
}

// IaCFile is a Bicep or Terraform file and the fragments it must contain.
// These templates cannot be deployed here, so the check is structural: the
// static IP, the PLS alias parameter, the manual connection and its request
// message must be present.
type IaCFile struct {
	Path  string
	Wants []*regexp.Regexp
}

// WorkloadIaC lists the structural expectations for deploy/workload's
// templates. ep is the endpoint the manifests use: the example parameter
// values must name the same IP.
func WorkloadIaC(dir string, ep netip.AddrPort) []IaCFile {
	ip := regexp.QuoteMeta(ep.Addr().String())
	re := regexp.MustCompile
	return []IaCFile{
		{filepath.Join(dir, "bicep", "private-endpoint.bicep"), []*regexp.Regexp{
			re(`(?m)^param privateLinkServiceAlias string$`),
			// Dynamic by default: a static IP is not supported for a
			// customer-owned PLS; it stays an explicit opt-in.
			re(`(?m)^param privateIpAddress string = ''$`),
			re(`ipConfigurations: empty\(privateIpAddress\) \? \[\] : \[`),
			re(`privateIPAddress: privateIpAddress`),
			re(`(?m)^output privateIpAddress string = reference\(endpoint\.properties\.networkInterfaces\[0\]\.id`),
			re(`(?m)^@maxLength\(140\)\nparam requestMessage string$`),
			re(`manualPrivateLinkServiceConnections: \[`),
			re(`privateLinkServiceId: privateLinkServiceAlias`),
			re(`requestMessage: requestMessage`),
		}},
		{filepath.Join(dir, "bicep", "private-endpoint.bicepparam"), []*regexp.Regexp{
			re(`(?m)^using 'private-endpoint\.bicep'$`),
			// The opt-in is shown, commented out, with the IP the
			// manifests use.
			re(`(?m)^// param privateIpAddress = '` + ip + `'$`),
			re(`(?m)^param privateLinkServiceAlias = '[^']+\.privatelinkservice'$`),
			re(`(?m)^param requestMessage = '[^']{1,140}'$`),
		}},
		{filepath.Join(dir, "terraform", "private-endpoint.tf"), []*regexp.Regexp{
			re(`private_connection_resource_alias\s*=\s*var\.private_link_service_alias`),
			re(`is_manual_connection\s*=\s*true`),
			re(`request_message\s*=\s*var\.request_message`),
			re(`length\(var\.request_message\) <= 140`),
			re(`(?s)variable "private_ip_address" \{[^}]*default\s*=\s*null`),
			re(`dynamic "ip_configuration"`),
			re(`output "private_ip_address"`),
			re(`e\.g\. \\"` + ip + `\\"`),
		}},
	}
}

// CheckIaC reads each file and reports every expectation it misses.
func CheckIaC(files []IaCFile) error {
	var errs []error
	for _, f := range files {
		data, err := os.ReadFile(f.Path)
		if err != nil {
			errs = append(errs, fmt.Errorf("read %s: %w", f.Path, err))
			continue
		}
		for _, w := range f.Wants {
			if !w.Match(data) {
				errs = append(errs, fmt.Errorf("%s: nothing matches %s", f.Path, w))
			}
		}
	}
	return errors.Join(errs...)
}
