package acl

import (
	"strings"
	"testing"
)

// Shadowing is found only where one earlier rule takes every request of
// the later one, across domains, cidrs, ports, methods and paths.
func TestShadowedRules(t *testing.T) {
	p := compileYAML(t, `
tenants:
  - name: a
    link_ids: [1]
    rules:
      - {name: squid, domains: [.example.com]}
      - {name: exact-below, domains: [api.example.com]}
      - {name: other, domains: [example.org]}
      - {name: star, domains: ["*.example.org"]}
      - {name: apex-not-below, domains: [example.org, x.example.org], ports: ["443"]} # two earlier rules together, not one
      - {name: get-only, cidrs: [10.0.0.0/8], methods: [GET]}
      - {name: get-narrow, cidrs: [10.1.0.0/16], methods: [get], ports: ["80"]}
      - {name: any-method, cidrs: [10.2.0.0/16]}
      - {name: allow-paths, action: allow, domains: [paths.test], paths: [/api]}
      - {name: deny-paths, action: deny, domains: [paths.test], paths: [/api/v1]}
      - {name: everything}
      - {name: after-everything, domains: [late.test]}
`)
	got := []string{}
	for _, s := range p.tenants[0].shadowed() {
		got = append(got, s.Rule+"<"+s.By+":"+s.Effect)
	}
	want := "exact-below<squid:redundant get-narrow<get-only:redundant after-everything<everything:redundant"
	if strings.Join(got, " ") != want {
		t.Fatalf("shadowed:\n got %s\nwant %s", strings.Join(got, " "), want)
	}
}
