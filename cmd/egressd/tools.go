package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/netip"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/egressd/egressd/acl"
	"github.com/egressd/egressd/inject"
	"github.com/egressd/egressd/metrics"
	"github.com/egressd/egressd/proxy"
	"github.com/egressd/egressd/tlsinspect"
)

// explain prints why one request would be allowed or denied.
func explain(e env, args []string) error {
	fs := newFlags(e, "explain")
	path := fs.String("config", "", "config file (default: the embedded development config)")
	tenant := fs.String("tenant", "", "assume a caller this tenant recognises: its first LinkID with a load balancer address inside its nat_cidrs, else an address in its source_cidrs")
	linkID := fs.String("link-id", "", "Azure private endpoint LinkID from the PROXY header")
	source := fs.String("source", "", "client address from the PROXY header")
	lb := fs.String("lb", "", "socket peer address (the PLS NAT IP the connection came from); a LinkID in a tenant with nat_cidrs only counts when this is inside them")
	user := fs.String("user", "", "proxy credentials as USER:PASSWORD")
	method := fs.String("method", "", "request method (default GET for http:// URLs, CONNECT for https:// URLs)")
	if err := fs.parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usagef("give exactly one URL, e.g. https://api.example.com:443/path")
	}
	cfg, _, err := loadConfig(*path)
	if err != nil {
		return err
	}
	notes := stubUnreadablePasswordFiles(&cfg.ACL)
	pol, err := acl.Compile(cfg.ACL)
	if err != nil {
		return err
	}
	id, err := explainIdentity(cfg.ACL, pol, identityFlags{tenant: *tenant, linkID: *linkID, source: *source, lb: *lb})
	if err != nil {
		return err
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
	fmt.Fprint(e.stdout, acl.Explain(pol, id, cred, t))
	fmt.Fprintf(e.stdout, "%-12s %s\n", "inspection:", inspectionVerdict(pol, cfg.TLS.Enabled(), pol.Decide(id, cred, t), t))
	for _, n := range notes {
		fmt.Fprintf(e.stdout, "%-12s %s\n", "note:", n)
	}
	return nil
}

// stubUnreadablePasswordFiles lets explain run on a production config
// away from its pod: a password_file that is a mounted Secret there does
// not exist on a laptop, and no decision without --user depends on its
// content. Such a user gets a hash of a random password nobody knows, so
// recognition by network identity is explained exactly and --user for
// that user fails as a wrong password would; the returned notes say so.
func stubUnreadablePasswordFiles(cfg *acl.Config) []string {
	var notes []string
	for i := range cfg.Tenants {
		for j := range cfg.Tenants[i].Users {
			u := &cfg.Tenants[i].Users[j]
			if u.PasswordFile == "" {
				continue
			}
			if _, err := os.ReadFile(u.PasswordFile); err == nil {
				continue
			}
			var secret [16]byte
			rand.Read(secret[:])
			h, err := bcrypt.GenerateFromPassword([]byte(hex.EncodeToString(secret[:])), bcrypt.MinCost)
			if err != nil {
				continue // Compile reports the unreadable file itself
			}
			u.PasswordFile, u.BCrypt = "", string(h)
			notes = append(notes, fmt.Sprintf("tenants[%d].users[%d].password_file is not readable here: --user %s cannot be verified", i, j, u.Name))
		}
	}
	return notes
}

// identityFlags are explain's flags that describe the caller.
type identityFlags struct{ tenant, linkID, source, lb string }

// explainIdentity builds the caller's identity from the flags: explicit
// --link-id, --source and --lb win, and --tenant fills in what they leave
// open with values the tenant really is recognised by.
func explainIdentity(cfg acl.Config, pol *acl.Policy, f identityFlags) (acl.Identity, error) {
	var id acl.Identity
	if f.linkID != "" {
		n, err := strconv.ParseUint(f.linkID, 10, 32)
		if err != nil {
			return id, usagef("--link-id %q: not a uint32", f.linkID)
		}
		id.LinkID, id.HasLinkID = uint32(n), true
	}
	for _, a := range []struct {
		flag, val string
		dst       *netip.AddrPort
	}{{"--source", f.source, &id.Client}, {"--lb", f.lb, &id.LB}} {
		if a.val == "" {
			continue
		}
		ip, err := netip.ParseAddr(a.val)
		if err != nil {
			return id, usagef("%s %q: not an IP address", a.flag, a.val)
		}
		*a.dst = netip.AddrPortFrom(ip.Unmap(), 0)
	}
	if f.tenant == "" {
		return id, nil
	}
	if f.linkID != "" || f.source != "" {
		return id, usagef("--tenant picks the identity; do not combine it with --link-id or --source")
	}
	return identityForTenant(cfg, pol, f.tenant, id)
}

func cutColon(s string) (string, string, bool) {
	for i := 0; i < len(s); i++ {
		if s[i] == ':' {
			return s[:i], s[i+1:], true
		}
	}
	return s, "", false
}

// identityForTenant returns an identity the named tenant is recognised
// by, the way its traffic really arrives: its first LinkID, through a load
// balancer address inside its nat_cidrs (or the --lb given), else an
// address inside its source_cidrs. The result is checked against the
// policy, so explain never reports a tenant the proxy would not pick.
func identityForTenant(cfg acl.Config, pol *acl.Policy, name string, id acl.Identity) (acl.Identity, error) {
	i := slices.IndexFunc(cfg.Tenants, func(t acl.TenantConfig) bool { return t.Name == name })
	if i < 0 {
		return id, fmt.Errorf("--tenant %q: no such tenant (tenants: %s)", name, strings.Join(pol.Tenants(), ", "))
	}
	t := cfg.Tenants[i]
	switch {
	case len(t.LinkIDs) > 0:
		id.LinkID, id.HasLinkID = t.LinkIDs[0], true
		if len(t.NATCIDRs) > 0 && !id.LB.IsValid() {
			id.LB = netip.AddrPortFrom(addrInside(t.NATCIDRs[0]), 0)
		}
	case len(t.SourceCIDRs) > 0:
		id.Client = netip.AddrPortFrom(addrInside(t.SourceCIDRs[0]), 0)
	case cfg.DefaultTenant == name:
		// Recognised by falling through: an identity no tenant claims.
	default:
		return id, fmt.Errorf("--tenant %q has no link_ids or source_cidrs: it is recognised by its users only; pass --user NAME:PASSWORD instead", name)
	}
	probe := acl.Target{Scheme: "https", Host: "example.invalid", Port: 443, Method: "CONNECT"}
	if got := pol.Decide(id, acl.Credentials{}, probe).Tenant; got != name {
		return id, fmt.Errorf("--tenant %q: its identity (%s) is recognised as tenant %q; give --link-id/--lb/--source explicitly", name, describeIdentity(id), got)
	}
	return id, nil
}

// addrInside is a host address inside a validated CIDR or IP: the first
// one after the network address, as a NAT pool or subnet would hand out.
func addrInside(s string) netip.Addr {
	if p, err := netip.ParsePrefix(s); err == nil {
		p = p.Masked()
		if a := p.Addr().Next(); p.Bits() < p.Addr().BitLen() && p.Contains(a) {
			return a.Unmap()
		}
		return p.Addr().Unmap()
	}
	a, _ := netip.ParseAddr(s)
	return a.Unmap()
}

func describeIdentity(id acl.Identity) string {
	var parts []string
	if id.HasLinkID {
		parts = append(parts, "link_id "+strconv.FormatUint(uint64(id.LinkID), 10))
	}
	if id.LB.IsValid() {
		parts = append(parts, "lb "+id.LB.Addr().String())
	}
	if id.Client.IsValid() {
		parts = append(parts, "source "+id.Client.Addr().String())
	}
	if len(parts) == 0 {
		return "no link_id or address"
	}
	return strings.Join(parts, ", ")
}

// inspectionVerdict says what the proxy would do with the TLS inside a
// tunnel to t: bump (decrypt and decide each request) or splice, and why.
func inspectionVerdict(pol *acl.Policy, caLoaded bool, d acl.Decision, t acl.Target) string {
	switch {
	case t.Scheme == "http":
		return "none: not a tunnel (a plain http:// request is seen in full)"
	case d.Tenant == "":
		return "none: the tunnel is refused"
	case t.Method == "CONNECT" && d.Action != acl.Allow:
		return "none: the tunnel is refused"
	}
	ins, why := pol.InspectionWhy(d.Tenant, t.Host)
	bump := ins.Bump && caLoaded
	if ins.Bump && !caLoaded {
		why += ", but tls_inspection has no ca_cert, so nothing is bumped"
	}
	verdict := "splice"
	if bump {
		verdict = "bump"
	}
	out := fmt.Sprintf("%s: %s (sni_check %s)", verdict, why, ins.SNICheck)
	if t.Method != "CONNECT" {
		// An https:// request with a method is only ever decided inside a
		// bumped tunnel; a spliced tunnel shows the proxy its CONNECT only.
		if bump {
			out += "; this request is decided inside the bumped tunnel"
		} else {
			out += "; the proxy sees only the CONNECT, so this method and path are never decided (explain the URL without -method)"
		}
	}
	return out
}

// targetFromURL is the Target the proxy builds for this URL, from the
// proxy's own parser (proxy.ParseTarget), so explain and serve agree on
// every spelling of a host, port, method and path.
func targetFromURL(raw, method string) (acl.Target, error) {
	t, err := proxy.ParseTarget(method, raw)
	if err != nil {
		return acl.Target{}, fmt.Errorf("%q: %w (want an absolute http:// or https:// URL)", raw, err)
	}
	return t, nil
}

// caCommand implements `egressd ca init --out DIR`.
func caCommand(e env, args []string) error {
	fs := newFlags(e, "ca")
	out := fs.String("out", "", "directory for ca.crt and ca.key")
	if len(args) == 0 || args[0] != "init" {
		if err := fs.parse(args); err != nil {
			return err
		}
		return usagef("the only subcommand is init")
	}
	if err := fs.parse(args[1:]); err != nil {
		return err
	}
	if *out == "" {
		return usagef("--out DIR is required")
	}
	stdout := e.stdout
	certPath, keyPath, err := tlsinspect.InitCA(*out, time.Now())
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s and %s\n\n%s", certPath, keyPath, tlsinspect.TrustInstructions(certPath))
	return nil
}

// injectCommand runs the workload-side admission webhook until a signal.
func injectCommand(e env, args []string) error {
	stderr := e.stderr
	path, err := requiredConfigFlag(e, "inject", args)
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
