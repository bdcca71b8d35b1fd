package inject

import (
	"net/netip"
	"slices"
	"strings"
)

// imdsAddr is Azure's instance metadata endpoint; workload identity and
// managed identity token requests go there and must never be proxied.
const imdsAddr = "169.254.169.254"

// buildNoProxy joins the bypass list in a fixed order (loopback, cluster
// ranges, cluster names, API server, IMDS, user entries) without duplicates,
// so the value is stable and a re-invocation sees the same string.
//
// CIDR entries are understood by Go, curl >= 7.86 and Python requests but not
// by every client (wget, older curl, Java's http.nonProxyHosts), which is why
// the cluster's DNS suffixes are listed as well. A single-label Service name
// ("myservice") cannot be expressed at all; see docs/inject.md.
func buildNoProxy(n NoProxyConfig) string {
	entries := []string{"localhost", "127.0.0.1", "::1"}
	for _, cidrs := range [][]string{n.ServiceCIDRs, n.PodCIDRs} {
		for _, s := range cidrs {
			// Validate has already rejected unparsable or unmasked prefixes;
			// the canonical form keeps "10.0.0.0/16" and "10.0.00.0/16" equal.
			if p, err := netip.ParsePrefix(s); err == nil {
				entries = append(entries, p.String())
			}
		}
	}
	domain := strings.TrimSuffix(n.ClusterDomain, ".")
	entries = append(entries, "."+domain, ".svc", "kubernetes.default", "kubernetes.default.svc")
	if n.APIServerFQDN != "" {
		entries = append(entries, strings.ToLower(n.APIServerFQDN))
	}
	if n.IMDS == nil || *n.IMDS {
		entries = append(entries, imdsAddr)
	}
	entries = append(entries, n.Extra...)

	out := make([]string, 0, len(entries))
	for _, e := range entries {
		if !slices.Contains(out, e) {
			out = append(out, e)
		}
	}
	return strings.Join(out, ",")
}
