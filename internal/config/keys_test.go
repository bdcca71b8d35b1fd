package config

import (
	"strings"
	"testing"
)

func TestParseAllNamesUnknownKeysInYAMLTerms(t *testing.T) {
	data := []byte(`proxy:
  proxy_protocol: "off"
  drain_delay: 0
tenants:
  - name: a
    source_cidrs: [10.0.0.0/8]
    rules:
      - name: r
        domain: [example.com]
      - name: s
        colour: blue
rulesets:
  web:
    - {name: w, prots: ["443"]}
`)
	_, err := ParseAll(data, "c.yaml")
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{
		"c.yaml:9: tenants[0].rules[0].domain: unknown key (did you mean domains?)",
		"c.yaml:11: tenants[0].rules[1].colour: unknown key (valid keys: action, cidrs, domains, methods, name, paths, ports, ruleset, schemes, upstream_proxy)",
		"c.yaml:14: rulesets.web[0].prots: unknown key (did you mean ports?)",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	if strings.Contains(err.Error(), "drain_delay") {
		t.Errorf("a bare 0 is an unambiguous duration:\n%v", err)
	}
}
