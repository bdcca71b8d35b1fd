package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/egressd/egressd/acl"
	"github.com/egressd/egressd/inject"
	"github.com/egressd/egressd/internal/config"
	"github.com/egressd/egressd/metrics"
	"github.com/egressd/egressd/tlsinspect"
)

// requiredConfigFlag parses `-config FILE` for subcommands that need it.
func requiredConfigFlag(name string, args []string) (string, error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	path := fs.String("config", "", "config file")
	if err := fs.Parse(args); err != nil {
		return "", err
	}
	if *path == "" {
		return "", errors.New("-config FILE is required")
	}
	return *path, nil
}

// check validates a config with the code a reload uses (including loading
// the inspection CA and password files) and prints a summary.
func check(args []string, stdout io.Writer) error {
	path, err := requiredConfigFlag("check", args)
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
	return nil
}

// explain prints why one request would be allowed or denied.
func explain(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("explain", flag.ContinueOnError)
	path := fs.String("config", "", "config file")
	tenant := fs.String("tenant", "", "assume this tenant (shortcut for its first LinkID or source range)")
	linkID := fs.String("link-id", "", "Azure private endpoint LinkID from the PROXY header")
	source := fs.String("source", "", "client address from the PROXY header")
	lb := fs.String("lb", "", "socket peer (PLS NAT address), for nat_cidrs scoping")
	user := fs.String("user", "", "proxy user:password")
	method := fs.String("method", "", "method (default GET for http://, CONNECT for https://)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New("give exactly one URL, e.g. https://api.example.com:443/path")
	}
	cfg, _, err := loadConfig(*path)
	if err != nil {
		return err
	}
	pol, err := acl.Compile(cfg.ACL)
	if err != nil {
		return err
	}
	var id acl.Identity
	if *linkID != "" {
		n, err := strconv.ParseUint(*linkID, 10, 32)
		if err != nil {
			return fmt.Errorf("--link-id %q: %w", *linkID, err)
		}
		id.LinkID, id.HasLinkID = uint32(n), true
	}
	if *tenant != "" && !id.HasLinkID && *source == "" {
		if err := identityForTenant(cfg.ACL, *tenant, &id); err != nil {
			return err
		}
	}
	if *source != "" {
		a, err := netip.ParseAddr(*source)
		if err != nil {
			return fmt.Errorf("--source: %w", err)
		}
		id.Client = netip.AddrPortFrom(a, 0)
	}
	if *lb != "" {
		a, err := netip.ParseAddr(*lb)
		if err != nil {
			return fmt.Errorf("--lb: %w", err)
		}
		id.LB = netip.AddrPortFrom(a, 0)
	}
	var cred acl.Credentials
	if *user != "" {
		u, p, _ := cutColon(*user)
		cred = acl.Credentials{User: u, Password: p, Present: true}
	}
	t, err := targetFromURL(fs.Arg(0), *method)
	if err != nil {
		return err
	}
	fmt.Fprint(stdout, acl.Explain(pol, id, cred, t))
	return nil
}

func cutColon(s string) (string, string, bool) {
	for i := 0; i < len(s); i++ {
		if s[i] == ':' {
			return s[:i], s[i+1:], true
		}
	}
	return s, "", false
}

// identityForTenant makes an identity the named tenant would be recognised by.
func identityForTenant(cfg acl.Config, name string, id *acl.Identity) error {
	for _, t := range cfg.Tenants {
		if t.Name != name {
			continue
		}
		if len(t.LinkIDs) > 0 {
			id.LinkID, id.HasLinkID = t.LinkIDs[0], true
			return nil
		}
		if len(t.SourceCIDRs) > 0 {
			if p, err := netip.ParsePrefix(t.SourceCIDRs[0]); err == nil {
				id.Client = netip.AddrPortFrom(p.Addr(), 0)
				return nil
			}
		}
		return fmt.Errorf("--tenant %q has no link_ids or source_cidrs; pass --user", name)
	}
	return fmt.Errorf("--tenant %q: no such tenant", name)
}

// targetFromURL builds the Target the proxy would build for this URL.
func targetFromURL(raw, method string) (acl.Target, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return acl.Target{}, fmt.Errorf("%q: not an absolute URL", raw)
	}
	host, addr, err := acl.ParseHost(u.Hostname())
	if err != nil {
		return acl.Target{}, err
	}
	t := acl.Target{Scheme: u.Scheme, Host: host, Addr: addr, Method: method, Path: u.Path}
	switch u.Scheme {
	case "http":
		t.Port = 80
		if t.Method == "" {
			t.Method = "GET"
		}
		if t.Path == "" {
			t.Path = "/"
		}
	case "https":
		t.Port = 443
		if t.Method == "" {
			t.Method, t.Path = "CONNECT", ""
		}
	default:
		return acl.Target{}, fmt.Errorf("%q: scheme must be http or https", raw)
	}
	if p := u.Port(); p != "" {
		n, err := strconv.ParseUint(p, 10, 16)
		if err != nil || n == 0 {
			return acl.Target{}, fmt.Errorf("%q: bad port", raw)
		}
		t.Port = uint16(n)
	}
	return t, nil
}

// replay re-decides logged traffic under a candidate config.
func replay(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("replay", flag.ContinueOnError)
	path := fs.String("config", "", "candidate config file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *path == "" || fs.NArg() != 1 {
		return errors.New("usage: egressd replay -config NEW.yaml ACCESS.log")
	}
	cfg, err := config.Load(*path)
	if err != nil {
		return err
	}
	pol, err := acl.Compile(cfg.ACL)
	if err != nil {
		return err
	}
	f, err := os.Open(fs.Arg(0))
	if err != nil {
		return err
	}
	defer f.Close()
	return acl.Replay(pol, f, stdout)
}

// caCommand implements `egressd ca init --out DIR`.
func caCommand(args []string, stdout io.Writer) error {
	if len(args) == 0 || args[0] != "init" {
		return errors.New("usage: egressd ca init --out DIR")
	}
	fs := flag.NewFlagSet("ca init", flag.ContinueOnError)
	out := fs.String("out", "", "directory for ca.crt and ca.key")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if *out == "" {
		return errors.New("--out DIR is required")
	}
	certPath, keyPath, err := tlsinspect.InitCA(*out, time.Now())
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s and %s\n\n%s", certPath, keyPath, tlsinspect.TrustInstructions(certPath))
	return nil
}

// injectCommand runs the workload-side admission webhook until a signal.
func injectCommand(args []string, stderr io.Writer) error {
	path, err := requiredConfigFlag("inject", args)
	if err != nil {
		return err
	}
	cfg, err := inject.LoadConfig(path)
	if err != nil {
		return err
	}
	log, err := newLogger("info", stderr)
	if err != nil {
		return err
	}
	defer log.Sync()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	return inject.Run(ctx, cfg, log, metrics.NewRegistry())
}
