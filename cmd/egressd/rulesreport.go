package main

import (
	"encoding/json"
	"io"
	"os"

	"github.com/egressd/egressd/acl"
	"github.com/egressd/egressd/internal/config"
	"github.com/egressd/egressd/internal/lint"
)

// rulesReport sets access logs against a config's rules: hits per rule,
// rules never hit, rules shadowed by earlier ones, and the denied
// destinations asked for most.
func rulesReport(e env, args []string) error {
	fs := newFlags(e, "rules-report")
	path := fs.String("config", "", "config file whose rules the logs are set against")
	asJSON := fs.Bool("json", false, "print JSON instead of a table")
	top := fs.Int("top", 10, "denied destinations listed per tenant")
	if err := fs.parse(args); err != nil {
		return err
	}
	if *path == "" {
		return usagef("-config FILE is required")
	}
	if fs.NArg() == 0 {
		return usagef("give at least one access log (or - for stdin)")
	}
	if *top < 0 {
		return usagef("-top must not be negative")
	}
	cfg, err := config.Load(*path)
	if err != nil {
		return err
	}
	pol, err := acl.Compile(cfg.ACL)
	if err != nil {
		return err
	}
	var logs []io.Reader
	for _, name := range fs.Args() {
		if name == "-" {
			logs = append(logs, e.stdin)
			continue
		}
		f, err := os.Open(name)
		if err != nil {
			return err
		}
		defer f.Close()
		logs = append(logs, f)
	}
	shadowed := map[string][]acl.Shadowing{}
	for _, f := range lint.Config(cfg.ACL) {
		if f.Rule == "" {
			continue // not a shadowing finding
		}
		effect := "redundant"
		if f.Overridden {
			effect = "overridden"
		}
		shadowed[f.Tenant] = append(shadowed[f.Tenant], acl.Shadowing{Rule: f.Rule, By: f.By, Effect: effect})
	}
	rep, err := acl.BuildRulesReport(pol, shadowed, logs, *top)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	return rep.WriteTable(e.stdout)
}
