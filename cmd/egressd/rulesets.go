package main

import (
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/egressd/egressd/acl"
)

// rulesets prints the built-in rulesets: every set with its source and
// revision, or one set's rules per cloud, with <region> expanded when
// -region is given, so operators can read exactly what a reference allows.
func rulesets(e env, args []string) error {
	stdout := e.stdout
	fs := newFlags(e, "rulesets")
	region := fs.String("region", "", "expand <region> in regional names (e.g. westeurope)")
	cloud := fs.String("cloud", "", "show only this cloud's list: public, china or usgov")
	if err := fs.parse(args); err != nil {
		return err
	}
	var want []string
	for _, a := range fs.Args() {
		b, ok := acl.LookupBuiltin(a)
		if !ok {
			return fmt.Errorf("%q: no such built-in ruleset (run egressd rulesets for the list)", a)
		}
		want = append(want, b.Name)
	}
	tw := tabwriter.NewWriter(stdout, 2, 8, 2, ' ', 0)
	for _, b := range acl.Builtins() {
		if len(want) > 0 && !slices.Contains(want, b.Name) {
			continue
		}
		fmt.Fprintf(tw, "%s%s\t%s\n", acl.BuiltinPrefix, b.Name, b.Summary)
		fmt.Fprintf(tw, "  source:\t%s\n  revised:\t%s\n", b.Source, b.Revised)
		for _, c := range []string{acl.CloudPublic, acl.CloudChina, acl.CloudUSGov} {
			rules, ok := b.Clouds[c]
			if !ok || *cloud != "" && c != *cloud {
				continue
			}
			fmt.Fprintf(tw, "  cloud %s:\n", c)
			for _, r := range rules {
				domains := strings.Join(r.Domains, " ")
				if *region != "" {
					domains = strings.ReplaceAll(domains, "<region>", *region)
				}
				fmt.Fprintf(tw, "    [%s]\t%s\tports %s\t%s\n", r.Name, domains, strings.Join(r.Ports, ","), r.Note)
			}
		}
		fmt.Fprintln(tw)
	}
	if len(want) == 0 {
		fmt.Fprintln(tw, "never inspected in tls_inspection mode bump (unless the tenant's bump list names the host):")
		for _, e := range acl.NeverInspect() {
			fmt.Fprintf(tw, "  %s\t%s\n", e.Domain, e.Why)
		}
	}
	return tw.Flush()
}
