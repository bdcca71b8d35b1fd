package acl

import "strings"

// NeverInspectEntry is one destination of the built-in never-inspect list.
type NeverInspectEntry struct{ Domain, Why string }

// NeverInspect returns the built-in never-inspect list as documented, with
// "<region>" left in; `egressd rulesets` prints it.
func NeverInspect() []NeverInspectEntry {
	out := make([]NeverInspectEntry, len(neverInspect))
	for i, e := range neverInspect {
		out[i] = NeverInspectEntry{e.Domain, e.Why}
	}
	return out
}

// neverInspectFor expands the list for a tenant's region. Without a region
// a regional pattern covers its whole zone ("*.hcp.<region>.azmk8s.io"
// becomes "*.azmk8s.io"): splicing too much only costs visibility, while
// bumping the API server tunnel breaks the cluster.
func neverInspectFor(region string) []string {
	out := make([]string, 0, len(neverInspect))
	for _, e := range neverInspect {
		d := e.Domain
		if i := strings.Index(d, regionToken+"."); i >= 0 {
			if region == "" {
				d = "*." + d[i+len(regionToken)+1:]
			} else {
				d = strings.ReplaceAll(d, regionToken, region)
			}
		}
		out = append(out, d)
	}
	return out
}

// containsNamed is contains without the "*" pattern: whether host was
// named on purpose, which is what overrides the never-inspect list.
func (d *domainIndex) containsNamed(host string) bool {
	if len(d.exact[host]) > 0 {
		return true
	}
	for i := 0; i < len(host); i++ {
		if host[i] == '.' && len(d.under[host[i+1:]]) > 0 {
			return true
		}
	}
	return false
}
