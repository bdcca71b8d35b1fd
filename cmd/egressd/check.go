package main

import (
	"fmt"

	"github.com/egressd/egressd/internal/config"
)

// requiredConfigFlag parses `-config FILE` for subcommands that need it.
func requiredConfigFlag(e env, name string, args []string) (string, error) {
	fs := newFlags(e, name)
	path := fs.String("config", "", "config file")
	if err := fs.parse(args); err != nil {
		return "", err
	}
	if *path == "" {
		return "", usagef("-config FILE is required")
	}
	if fs.NArg() > 0 {
		return "", usagef("unexpected argument %q", fs.Arg(0))
	}
	return *path, nil
}

// check validates a config with the code a reload uses (including loading
// the inspection CA and password files) and prints a summary.
func check(e env, args []string) error {
	path, err := requiredConfigFlag(e, "check", args)
	if err != nil {
		return err
	}
	cfg, err := config.Load(path)
	if err != nil {
		return err
	}
	pol, _, err := buildPolicy(cfg, nil)
	if err != nil {
		return err
	}
	stdout := e.stdout
	fmt.Fprintf(stdout, "%s: OK\n", path)
	fmt.Fprintf(stdout, "  proxy:   %s (proxy_protocol %s, trusted %v)\n", cfg.Proxy.Listen, cfg.Proxy.ProxyProtocol, cfg.Proxy.TrustedProxies)
	fmt.Fprintf(stdout, "  admin:   %s\n", cfg.Admin.Listen)
	fmt.Fprintf(stdout, "  log:     %s to %s\n", cfg.Log.Format, cfg.Log.Output)
	fmt.Fprintf(stdout, "  tenants: %d %v\n", len(pol.Tenants()), pol.Tenants())
	if cfg.ACL.DefaultTenant != "" {
		fmt.Fprintf(stdout, "  unknown callers go to tenant %q\n", cfg.ACL.DefaultTenant)
	} else {
		fmt.Fprintln(stdout, "  unknown callers are denied (no default_tenant)")
	}
	if cfg.TLS.Enabled() {
		fmt.Fprintf(stdout, "  tls_inspection: CA %s\n", cfg.TLS.CACert)
	}
	for _, f := range pol.Feeds() {
		mode := "deny"
		if f.ReportOnly {
			mode = "report-only"
		}
		fmt.Fprintf(stdout, "  deny feed %s (%s): %s, %d domains, %d address ranges", f.Name, mode, f.File, f.Domains, f.Ranges)
		if f.Skipped > 0 {
			fmt.Fprintf(stdout, ", %d lines skipped (first: line %d)", f.Skipped, f.FirstSkipped)
		}
		fmt.Fprintln(stdout)
	}
	return nil
}
