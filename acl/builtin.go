package acl

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// BuiltinPrefix marks a ruleset reference as one egressd ships
// (`- ruleset: builtin/aks-required`) instead of one under `rulesets:`.
const BuiltinPrefix = "builtin/"

// Clouds a tenant's `cloud:` key may name. Built-ins whose names differ
// between Azure clouds carry one rule list per cloud.
const (
	CloudPublic = "public" // the default
	CloudChina  = "china"  // Microsoft Azure operated by 21Vianet
	CloudUSGov  = "usgov"  // Azure US Government
)

// regionToken is replaced by the tenant's `region:` value in built-in
// domains, where Microsoft's list names a region instead of a wildcard.
const regionToken = "<region>"

// Builtin is one versioned ruleset egressd ships. Its rules are compiled
// like a user ruleset's, named "builtin/NAME[rule]" in decisions and logs,
// so an access line says which maintained list let a request out.
type Builtin struct {
	Name string // without BuiltinPrefix, e.g. "aks-required"
	// Summary says in one line what the set is for.
	Summary string
	// Source is the page the content was taken from.
	Source string
	// Revised is the date (YYYY-MM-DD) the content was last checked
	// against Source; `egressd rulesets` prints it so operators can tell a
	// stale binary from a current one.
	Revised string
	// Clouds maps CloudPublic/CloudChina/CloudUSGov to its rules. A cloud
	// absent here is not documented for this set and is refused by Validate.
	Clouds map[string][]BuiltinRule
}

// BuiltinRule is one named group of destinations inside a Builtin.
type BuiltinRule struct {
	Name    string
	Domains []string // may contain regionToken
	Ports   []string
	Note    string // why the destination is needed, from the source
}

// Regional reports whether any of the cloud's rules needs `region:`.
func (b *Builtin) Regional(cloud string) bool {
	for _, r := range b.Clouds[cloud] {
		for _, d := range r.Domains {
			if strings.Contains(d, regionToken) {
				return true
			}
		}
	}
	return false
}

// Builtins returns every shipped ruleset, sorted by name. The result is a
// copy: callers may not change what Compile uses.
func Builtins() []Builtin {
	out := make([]Builtin, 0, len(builtinSets))
	for _, b := range builtinSets {
		out = append(out, b)
	}
	slices.SortFunc(out, func(a, b Builtin) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// LookupBuiltin finds a built-in by reference ("builtin/aks-required") or
// bare name ("aks-required").
func LookupBuiltin(ref string) (Builtin, bool) {
	b, ok := builtinSets[strings.TrimPrefix(ref, BuiltinPrefix)]
	return b, ok
}

// builtinRules expands a built-in for one tenant's cloud and region into
// ordinary rules. Validate has already checked cloud, region and the set.
func builtinRules(ref, cloud, region string) []RuleConfig {
	b, _ := LookupBuiltin(ref)
	if cloud == "" {
		cloud = CloudPublic
	}
	var out []RuleConfig
	for _, r := range b.Clouds[cloud] {
		rc := RuleConfig{Name: BuiltinPrefix + b.Name + "[" + r.Name + "]", Ports: r.Ports}
		for _, d := range r.Domains {
			rc.Domains = append(rc.Domains, strings.ReplaceAll(d, regionToken, region))
		}
		out = append(out, rc)
	}
	return out
}

// checkBuiltinRef validates `- ruleset: builtin/NAME` for a tenant.
func checkBuiltinRef(ref, cloud, region string) error {
	b, ok := LookupBuiltin(ref)
	if !ok {
		names := make([]string, 0, len(builtinSets))
		for _, b := range Builtins() {
			names = append(names, BuiltinPrefix+b.Name)
		}
		return fmt.Errorf("%q: no such built-in ruleset; egressd ships %s", ref, strings.Join(names, ", "))
	}
	if cloud == "" {
		cloud = CloudPublic
	}
	if _, ok := b.Clouds[cloud]; !ok {
		return fmt.Errorf("%q has no list for cloud %q in its source (%s)", ref, cloud, b.Source)
	}
	if region == "" && b.Regional(cloud) {
		return fmt.Errorf("%q names regional endpoints; set the tenant's region: (e.g. region: westeurope)", ref)
	}
	return nil
}

// checkRegion keeps a region usable as one DNS label, since it is spliced
// into names like "*.hcp.<region>.azmk8s.io".
func checkRegion(s string) error {
	if s == "" {
		return nil
	}
	if len(s) > 63 {
		return errors.New("longer than 63 characters")
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			return errors.New(`use the lower-case Azure region name, e.g. "westeurope"`)
		}
	}
	return nil
}

func checkCloud(s string) error {
	switch s {
	case "", CloudPublic, CloudChina, CloudUSGov:
		return nil
	}
	return fmt.Errorf("%q: must be %q (default), %q or %q", s, CloudPublic, CloudChina, CloudUSGov)
}
