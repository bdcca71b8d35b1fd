package inject

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/api/validate/content"
	"k8s.io/apimachinery/pkg/util/validation"
)

// maxRequestBytesLimit keeps a typo from turning the body bound into no bound.
const maxRequestBytesLimit = 64 << 20

// Validate checks a defaulted Config. Every message starts with the YAML
// path of the offending field, and all problems are reported at once.
func (c Config) Validate() error {
	var errs []error
	bad := func(path, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: "+format, append([]any{path}, args...)...))
	}

	if !isHostPort(c.Listen) {
		bad("listen", "%q: want host:port, e.g. \":8443\"", c.Listen)
	}
	if c.AdminListen != "off" {
		if !isHostPort(c.AdminListen) {
			bad("admin_listen", "%q: want host:port or \"off\"", c.AdminListen)
		} else if c.AdminListen == c.Listen {
			bad("admin_listen", "%q: must differ from listen", c.AdminListen)
		}
	}
	if c.TLS.CertFile == "" {
		bad("tls.cert_file", "required")
	}
	if c.TLS.KeyFile == "" {
		bad("tls.key_file", "required")
	}
	if c.MaxRequestBytes <= 0 || c.MaxRequestBytes > maxRequestBytesLimit {
		bad("max_request_bytes", "%d: want 1 to %d", c.MaxRequestBytes, maxRequestBytesLimit)
	}
	if c.ShutdownDelay < 0 {
		bad("shutdown_delay", "%s: must not be negative", c.ShutdownDelay)
	}
	if c.ShutdownTimeout <= 0 {
		bad("shutdown_timeout", "%s: must be positive", c.ShutdownTimeout)
	}
	if c.FailurePolicy != FailurePolicyFail && c.FailurePolicy != FailurePolicyIgnore {
		bad("failure_policy", "%q: want %q or %q", c.FailurePolicy, FailurePolicyFail, FailurePolicyIgnore)
	}

	if len(c.Selector) == 0 {
		bad("selector", "must not be empty: it is what keeps unlabelled pods untouched")
	}
	for _, k := range sortedKeys(c.Selector) {
		if msgs := content.IsLabelKey(k); len(msgs) > 0 {
			bad(fmt.Sprintf("selector[%q]", k), "invalid label key: %s", strings.Join(msgs, "; "))
		}
		if msgs := content.IsLabelValue(c.Selector[k]); len(msgs) > 0 {
			bad(fmt.Sprintf("selector[%q]", k), "%q: invalid label value: %s", c.Selector[k], strings.Join(msgs, "; "))
		}
	}

	if c.Proxy.HTTPProxy == "" {
		bad("proxy.http_proxy", "required, e.g. http://10.2.128.100:3128")
	} else if err := checkProxyURL(c.Proxy.HTTPProxy); err != nil {
		bad("proxy.http_proxy", "%q: %v", c.Proxy.HTTPProxy, err)
	}
	if c.Proxy.HTTPSProxy != c.Proxy.HTTPProxy {
		if err := checkProxyURL(c.Proxy.HTTPSProxy); err != nil {
			bad("proxy.https_proxy", "%q: %v", c.Proxy.HTTPSProxy, err)
		}
	}

	errs = append(errs, c.NoProxy.validate()...)
	errs = append(errs, c.CA.validate()...)
	return errors.Join(errs...)
}

func (n NoProxyConfig) validate() []error {
	var errs []error
	for field, cidrs := range map[string][]string{"service_cidrs": n.ServiceCIDRs, "pod_cidrs": n.PodCIDRs} {
		for i, s := range cidrs {
			p, err := netip.ParsePrefix(s)
			switch {
			case err != nil:
				errs = append(errs, fmt.Errorf("no_proxy.%s[%d]: %q: want a CIDR such as 10.0.0.0/16", field, i, s))
			case p != p.Masked():
				errs = append(errs, fmt.Errorf("no_proxy.%s[%d]: %q: host bits set; use %s", field, i, s, p.Masked()))
			}
		}
	}
	if msgs := validation.IsDNS1123Subdomain(n.ClusterDomain); len(msgs) > 0 {
		errs = append(errs, fmt.Errorf("no_proxy.cluster_domain: %q: %s", n.ClusterDomain, strings.Join(msgs, "; ")))
	}
	if n.APIServerFQDN != "" {
		if msgs := validation.IsDNS1123Subdomain(n.APIServerFQDN); len(msgs) > 0 {
			errs = append(errs, fmt.Errorf("no_proxy.api_server_fqdn: %q: want a host name without scheme or port: %s", n.APIServerFQDN, strings.Join(msgs, "; ")))
		}
	}
	for i, e := range n.Extra {
		if e == "" || strings.ContainsAny(e, ", \t\r\n") {
			errs = append(errs, fmt.Errorf("no_proxy.extra[%d]: %q: want one non-empty entry without commas or spaces", i, e))
		}
	}
	// Map iteration above is unordered; keep the joined message stable.
	sort.Slice(errs, func(i, j int) bool { return errs[i].Error() < errs[j].Error() })
	return errs
}

func (c CAConfig) validate() []error {
	if c.ConfigMap == "" {
		return nil
	}
	var errs []error
	bad := func(path, format string, args ...any) {
		errs = append(errs, fmt.Errorf("ca.%s: "+format, append([]any{path}, args...)...))
	}
	if msgs := validation.IsDNS1123Subdomain(c.ConfigMap); len(msgs) > 0 {
		bad("config_map", "%q: %s", c.ConfigMap, strings.Join(msgs, "; "))
	}
	if msgs := validation.IsConfigMapKey(c.Key); len(msgs) > 0 {
		bad("key", "%q: %s", c.Key, strings.Join(msgs, "; "))
	}
	if msgs := validation.IsDNS1123Label(c.VolumeName); len(msgs) > 0 {
		bad("volume_name", "%q: %s", c.VolumeName, strings.Join(msgs, "; "))
	}
	if !path.IsAbs(c.MountPath) || path.Clean(c.MountPath) != c.MountPath || c.MountPath == "/" {
		bad("mount_path", "%q: want a clean absolute directory other than /", c.MountPath)
	}
	for i, name := range c.Env {
		if msgs := validation.IsEnvVarName(name); len(msgs) > 0 {
			bad(fmt.Sprintf("env[%d]", i), "%q: %s", name, strings.Join(msgs, "; "))
		}
		if slices.Contains(proxyVarNames, name) {
			bad(fmt.Sprintf("env[%d]", i), "%q: is a proxy variable", name)
		}
		if slices.Contains(c.Env[:i], name) {
			bad(fmt.Sprintf("env[%d]", i), "%q: duplicate", name)
		}
	}
	return errs
}

// checkProxyURL accepts what curl, Go, Python and Node all understand: an
// http or https URL with a host and nothing after the authority.
func checkProxyURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return errors.New("not a URL")
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return errors.New("scheme must be http or https")
	}
	if u.Hostname() == "" {
		return errors.New("missing host")
	}
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return errors.New("must not have a path, query or fragment")
	}
	return nil
}

// isHostPort accepts "host:port" and ":port" with a numeric port.
func isHostPort(s string) bool {
	_, port, err := net.SplitHostPort(s)
	if err != nil {
		return false
	}
	_, err = strconv.ParseUint(port, 10, 16)
	return err == nil
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
