package main

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/egressd/egressd/acl"
	"github.com/egressd/egressd/internal/config"
	"github.com/egressd/egressd/internal/lint"
)

// check validates a config with the code a reload uses (including reading
// the inspection CA and password files), reports every error at once with
// its line, lints what is valid but surely not meant, and prints a summary.
func check(e env, args []string) error {
	fs := newFlags(e, "check")
	path := fs.String("config", "", "config file")
	strict := fs.Bool("strict", false, "exit 1 on warnings too (shadowed rules), not only on errors")
	if err := fs.parse(args); err != nil {
		return err
	}
	if *path == "" {
		return usagef("-config FILE is required")
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	raw, err := os.ReadFile(*path)
	if err != nil {
		return fmt.Errorf("read config: %w", err)
	}
	cfg, err := config.ParseAll(raw, *path)
	if err != nil {
		// The files are read even so: one run shows every problem.
		return errors.Join(err, config.Locate(fileErrors(cfg), raw, *path))
	}
	pol, cerr := acl.Compile(cfg.ACL)
	_, ierr := loadInspector(cfg.TLS, nil)
	if err := config.Locate(errors.Join(cerr, ierr), raw, *path); err != nil {
		return err
	}

	warnings := lint.Config(cfg.ACL)
	for _, w := range warnings {
		fmt.Fprintf(e.stderr, "warning: %v\n", config.Locate(errors.New(w.String()), raw, *path))
	}
	summary(e, *path, hash(raw), cfg, pol, len(warnings))
	if *strict && len(warnings) > 0 {
		return fmt.Errorf("%d warning(s) and -strict", len(warnings))
	}
	return nil
}

// fileErrors reads the files a config names, for a config that failed
// validation and so never reached Compile: their errors start with the
// YAML path, like Compile's.
func fileErrors(cfg config.Config) error {
	var errs []error
	for i, t := range cfg.ACL.Tenants {
		for j, u := range t.Users {
			if u.PasswordFile == "" {
				continue
			}
			if _, err := os.ReadFile(u.PasswordFile); err != nil {
				errs = append(errs, fmt.Errorf("tenants[%d].users[%d].password_file: read: %w", i, j, err))
			}
		}
	}
	for _, f := range []struct{ key, path string }{{"ca_cert", cfg.TLS.CACert}, {"ca_key", cfg.TLS.CAKey}} {
		if f.path == "" {
			continue
		}
		if _, err := os.ReadFile(f.path); err != nil {
			errs = append(errs, fmt.Errorf("tls_inspection.%s: %w", f.key, err))
		}
	}
	return errors.Join(errs...)
}

// summary prints the one line a reviewer reads (the hash matches the
// config_hash serve logs at startup and on reload) and the details.
func summary(e env, path, configHash string, cfg config.Config, pol *acl.Policy, warnings int) {
	var reportOnly, inspected []string
	for _, t := range cfg.ACL.Tenants {
		if cfg.ACL.ReportOnly || t.ReportOnly {
			reportOnly = append(reportOnly, t.Name)
		}
		if t.TLSInspection.Mode == "bump" {
			inspected = append(inspected, t.Name)
		}
	}
	list := func(names []string) string {
		if len(names) == 0 {
			return "none"
		}
		return strings.Join(names, ",")
	}
	w := e.stdout
	fmt.Fprintf(w, "%s: OK config_hash=%s tenants=%d report_only=%s inspected=%s warnings=%d\n",
		path, configHash, len(pol.Tenants()), list(reportOnly), list(inspected), warnings)
	fmt.Fprintf(w, "  proxy:   %s (proxy_protocol %s, trusted %v)\n", cfg.Proxy.Listen, cfg.Proxy.ProxyProtocol, cfg.Proxy.TrustedProxies)
	fmt.Fprintf(w, "  admin:   %s\n", cfg.Admin.Listen)
	fmt.Fprintf(w, "  log:     %s to %s\n", cfg.Log.Format, cfg.Log.Output)
	fmt.Fprintf(w, "  tenants: %d %v\n", len(pol.Tenants()), pol.Tenants())
	if cfg.ACL.DefaultTenant != "" {
		fmt.Fprintf(w, "  unknown callers go to tenant %q\n", cfg.ACL.DefaultTenant)
	} else {
		fmt.Fprintln(w, "  unknown callers are denied (no default_tenant)")
	}
	if cfg.TLS.Enabled() {
		fmt.Fprintf(w, "  tls_inspection: CA %s\n", cfg.TLS.CACert)
	}
	for _, f := range pol.Feeds() {
		mode := "deny"
		if f.ReportOnly {
			mode = "report-only"
		}
		fmt.Fprintf(w, "  deny feed %s (%s): %s, %d domains, %d address ranges", f.Name, mode, f.File, f.Domains, f.Ranges)
		if f.Skipped > 0 {
			fmt.Fprintf(w, ", %d lines skipped (first: line %d)", f.Skipped, f.FirstSkipped)
		}
		fmt.Fprintln(w)
	}
}
