package proxy

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/egressd/egressd/acl"
)

// These tests drive the dialer with a fake resolver and a fake DialFunc
// (net.Pipe ends), so they open no socket: what is resolved, what is
// checked, what is dialed, and which step an error names.

// answers is a resolver with fixed answers; any other name fails, and
// every lookup is counted.
type answers struct {
	mu      sync.Mutex
	m       map[string][]netip.Addr
	lookups int
}

func (a *answers) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.lookups++
	addrs, ok := a.m[host]
	if !ok {
		return nil, errors.New("no such host")
	}
	return append([]netip.Addr(nil), addrs...), nil
}

// dialLog is a DialFunc that records each address it is asked for and
// answers with fail[addr] when set, else with one end of a pipe.
type dialLog struct {
	mu     sync.Mutex
	dialed []string
	fail   map[string]error
}

func (l *dialLog) dial(_ context.Context, _, address string) (net.Conn, error) {
	l.mu.Lock()
	l.dialed = append(l.dialed, address)
	err := l.fail[address]
	l.mu.Unlock()
	if err != nil {
		return nil, err
	}
	c, peer := net.Pipe()
	go func() { io.Copy(io.Discard, peer); peer.Close() }()
	return c, nil
}

func (l *dialLog) addrs() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.dialed...)
}

// loopbackOnlyPolicy lets tenant demo reach 127.0.0.0/8 except
// 127.0.0.99 and nothing internal besides; report makes the tenant
// report-only.
func loopbackOnlyPolicy(t *testing.T, report bool) *acl.Policy {
	t.Helper()
	pol, err := acl.Compile(acl.Config{Tenants: []acl.TenantConfig{{
		Name:        "demo",
		SourceCIDRs: []string{"127.0.0.0/8"},
		ReportOnly:  report,
		Rules: []acl.RuleConfig{
			{Name: "no-99", Action: "deny", CIDRs: []string{"127.0.0.99/32"}},
			{Name: "loopback", CIDRs: []string{"127.0.0.0/8"}},
			{Name: "names", Domains: []string{".origin.test"}},
		},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	return pol
}

func TestDialTargetChecksEveryAddressBeforeDialing(t *testing.T) {
	t.Parallel()
	res := &answers{m: map[string][]netip.Addr{
		"one.origin.test":    {netip.MustParseAddr("127.0.0.7")},
		"two.origin.test":    {netip.MustParseAddr("127.0.0.8"), netip.MustParseAddr("127.0.0.9")},
		"mapped.origin.test": {netip.MustParseAddr("::ffff:127.0.0.10")},
		// One internal answer among allowed ones is the shape of a
		// rebinding attempt: the whole name is refused.
		"rebind.origin.test": {netip.MustParseAddr("127.0.0.11"), netip.MustParseAddr("10.0.0.1")},
		"meta.origin.test":   {netip.MustParseAddr("169.254.169.254")},
		"v6ula.origin.test":  {netip.MustParseAddr("fd00::1")},
		"empty.origin.test":  {},
	}}
	pol := loopbackOnlyPolicy(t, false)
	tests := []struct {
		name     string
		target   acl.Target
		step     DialStep // checked when wantErr
		wantErr  string   // substring of the error; "" for success
		dialed   []string
		got      string // the AddrPort returned
		resolved bool
	}{
		{name: "IP literal is checked and dialed without DNS", target: acl.Target{Host: "127.0.0.5", Addr: netip.MustParseAddr("127.0.0.5"), Port: 80},
			dialed: []string{"127.0.0.5:80"}, got: "127.0.0.5:80"},
		{name: "mapped IP literal is dialed as IPv4", target: acl.Target{Host: "::ffff:127.0.0.6", Addr: netip.MustParseAddr("::ffff:127.0.0.6"), Port: 80},
			dialed: []string{"127.0.0.6:80"}, got: "127.0.0.6:80"},
		{name: "denied IP literal is never dialed", target: acl.Target{Host: "10.1.2.3", Addr: netip.MustParseAddr("10.1.2.3"), Port: 443},
			step: DialStepSSRF, wantErr: "dial 10.1.2.3: destination address not allowed (10.1.2.3 is ssrf)"},
		{name: "IPv6 loopback literal is not in the rule", target: acl.Target{Host: "::1", Addr: netip.MustParseAddr("::1"), Port: 443},
			step: DialStepSSRF, wantErr: "destination address not allowed (::1 is ssrf)"},
		{name: "name dials the resolved address", target: acl.Target{Host: "one.origin.test", Port: 8080},
			resolved: true, dialed: []string{"127.0.0.7:8080"}, got: "127.0.0.7:8080"},
		{name: "mapped answer is unmapped before check and dial", target: acl.Target{Host: "mapped.origin.test", Port: 8080},
			resolved: true, dialed: []string{"127.0.0.10:8080"}, got: "127.0.0.10:8080"},
		{name: "one internal answer refuses the name", target: acl.Target{Host: "rebind.origin.test", Port: 80},
			resolved: true, step: DialStepSSRF, wantErr: "dial rebind.origin.test: destination address not allowed (10.0.0.1 is ssrf)"},
		{name: "link-local metadata address", target: acl.Target{Host: "meta.origin.test", Port: 80},
			resolved: true, step: DialStepSSRF, wantErr: "169.254.169.254 is ssrf"},
		{name: "IPv6 ULA answer", target: acl.Target{Host: "v6ula.origin.test", Port: 80},
			resolved: true, step: DialStepSSRF, wantErr: "fd00::1 is ssrf"},
		{name: "lookup failure is a DNS error", target: acl.Target{Host: "missing.origin.test", Port: 80},
			resolved: true, step: DialStepDNS, wantErr: "dns missing.origin.test: no such host"},
		{name: "no answers is a DNS error", target: acl.Target{Host: "empty.origin.test", Port: 80},
			resolved: true, step: DialStepDNS, wantErr: "dns empty.origin.test: no addresses"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dl := &dialLog{}
			before := lookupsOf(res)
			var observed error
			observedCalls := 0
			d := &dialer{resolver: res, dial: dl.dial, timeout: 5 * time.Second,
				observe: func(_, _ time.Duration, err error) { observed, observedCalls = err, observedCalls+1 }}
			e := &entry{dec: acl.Decision{Tenant: "demo", Action: acl.Allow}, target: tc.target}
			conn, ap, err := d.dialTarget(context.Background(), tc.target, dialCheck(pol, e))
			if conn != nil {
				conn.Close()
			}
			if resolved := lookupsOf(res) > before; resolved != tc.resolved {
				t.Errorf("resolver asked: %v, want %v", resolved, tc.resolved)
			}
			if got := dl.addrs(); strings.Join(got, ",") != strings.Join(tc.dialed, ",") {
				t.Errorf("dialed %v, want %v", got, tc.dialed)
			}
			if observedCalls != 1 || (observed == nil) != (err == nil) || !errors.Is(err, observed) {
				t.Errorf("observe called %d times with %v, want once with the returned error %v", observedCalls, observed, err)
			}
			if tc.wantErr == "" {
				if err != nil || ap.String() != tc.got {
					t.Fatalf("got %v, %v; want %s", ap, err, tc.got)
				}
				return
			}
			var de *DialError
			if !errors.As(err, &de) || de.Step != tc.step || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %v, want a %v DialError containing %q", err, tc.step, tc.wantErr)
			}
			if de.Step == DialStepSSRF && (de.Decision.Action != acl.Deny || de.Decision.Rule != "ssrf") {
				t.Errorf("SSRF error carries decision %+v, want the deny", de.Decision)
			}
		})
	}
}

func lookupsOf(a *answers) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.lookups
}

// TestDialCheckMarksReportOnlyDenials: in report-only mode an address a
// deny rule would refuse is dialed, and the entry is marked would_deny
// with that rule, so the access log shows what enforcement would do. The
// internal-range guard is not a rule and refuses even then.
func TestDialCheckMarksReportOnlyDenials(t *testing.T) {
	t.Parallel()
	pol := loopbackOnlyPolicy(t, true)
	d := &dialer{resolver: &answers{}, dial: (&dialLog{}).dial, timeout: 5 * time.Second}
	denied := acl.Target{Host: "127.0.0.99", Addr: netip.MustParseAddr("127.0.0.99"), Port: 80}
	e := &entry{dec: acl.Decision{Tenant: "demo", Action: acl.Allow, Rule: "loopback"}, target: denied}
	conn, _, err := d.dialTarget(context.Background(), denied, dialCheck(pol, e))
	if err != nil {
		t.Fatalf("report-only dial refused: %v", err)
	}
	conn.Close()
	if !e.dec.WouldDeny || e.dec.Rule != "no-99" || e.dec.Action != acl.Allow {
		t.Errorf("entry decision %+v, want allow marked would_deny by rule no-99", e.dec)
	}

	internal := acl.Target{Host: "10.1.2.3", Addr: netip.MustParseAddr("10.1.2.3"), Port: 80}
	e = &entry{dec: acl.Decision{Tenant: "demo", Action: acl.Allow, Rule: "loopback"}, target: internal}
	if _, _, err := d.dialTarget(context.Background(), internal, dialCheck(pol, e)); err == nil {
		t.Fatal("report-only tenant dialed an internal address")
	}
	if e.dec.WouldDeny {
		t.Errorf("a refused dial marked the entry would_deny: %+v", e.dec)
	}

	// An allowed address leaves the entry as the request decided it.
	e = &entry{dec: acl.Decision{Tenant: "demo", Action: acl.Allow, Rule: "loopback"}, target: denied}
	if v := dialCheck(pol, e)(netip.MustParseAddr("127.0.0.1")); v.Action != acl.Allow || e.dec.WouldDeny || e.dec.Rule != "loopback" {
		t.Errorf("allowed address: verdict %+v, entry %+v", v, e.dec)
	}
}

// TestDialTargetTriesEachAddressInTurn: a refused connect moves on to the
// next address of the same family; when all fail the first error is
// reported as a connect error.
func TestDialTargetTriesEachAddressInTurn(t *testing.T) {
	t.Parallel()
	refused := errors.New("connection refused")
	res := &answers{m: map[string][]netip.Addr{"multi.origin.test": {
		netip.MustParseAddr("127.0.0.21"), netip.MustParseAddr("127.0.0.22"), netip.MustParseAddr("127.0.0.23")}}}
	allow := func(netip.Addr) acl.Decision { return acl.Decision{Action: acl.Allow} }
	target := acl.Target{Host: "multi.origin.test", Port: 80}

	dl := &dialLog{fail: map[string]error{"127.0.0.21:80": refused}}
	d := &dialer{resolver: res, dial: dl.dial, timeout: 5 * time.Second}
	conn, ap, err := d.dialTarget(context.Background(), target, allow)
	if err != nil || ap.String() != "127.0.0.22:80" {
		t.Fatalf("got %v, %v; want the second address", ap, err)
	}
	conn.Close()
	if got := dl.addrs(); len(got) != 2 {
		t.Errorf("dialed %v, want to stop at the first success", got)
	}

	dl = &dialLog{fail: map[string]error{"127.0.0.21:80": refused, "127.0.0.22:80": errors.New("second"), "127.0.0.23:80": errors.New("third")}}
	d = &dialer{resolver: res, dial: dl.dial, timeout: 5 * time.Second}
	_, _, err = d.dialTarget(context.Background(), target, allow)
	var de *DialError
	if !errors.As(err, &de) || de.Step != DialStepConnect || !errors.Is(err, refused) {
		t.Fatalf("error %v, want a connect DialError wrapping the first failure", err)
	}
	if got := dl.addrs(); len(got) != 3 {
		t.Errorf("dialed %v, want all three", got)
	}
}

// TestDialRaceFallsBackToTheOtherFamily covers the RFC 8305 race: a
// failed first family starts the other at once; a hung one starts it
// after happyEyeballsDelay and is cancelled when the other wins; a late
// winner's connection is closed, not leaked.
func TestDialRaceFallsBackToTheOtherFamily(t *testing.T) {
	t.Parallel()
	v6, v4 := netip.MustParseAddr("::1"), netip.MustParseAddr("127.0.0.1")

	t.Run("failed primary starts the fallback at once", func(t *testing.T) {
		t.Parallel()
		dl := &dialLog{fail: map[string]error{"[::1]:80": errors.New("unreachable")}}
		d := &dialer{dial: dl.dial}
		start := time.Now()
		c, ap, err := d.race(context.Background(), []netip.Addr{v6, v4}, 80)
		if err != nil || ap.Addr() != v4 {
			t.Fatalf("got %v, %v; want the IPv4 address", ap, err)
		}
		c.Close()
		if el := time.Since(start); el >= happyEyeballsDelay {
			t.Errorf("fallback after %v, want no wait for the attempt delay", el)
		}
	})

	t.Run("hung primary is cancelled when the fallback wins", func(t *testing.T) {
		t.Parallel()
		cancelled := make(chan struct{})
		dl := &dialLog{}
		d := &dialer{dial: func(ctx context.Context, n, a string) (net.Conn, error) {
			if a == "[::1]:80" {
				<-ctx.Done()
				close(cancelled)
				return nil, ctx.Err()
			}
			return dl.dial(ctx, n, a)
		}}
		start := time.Now()
		c, ap, err := d.race(context.Background(), []netip.Addr{v6, v4}, 80)
		if err != nil || ap.Addr() != v4 {
			t.Fatalf("got %v, %v; want the IPv4 address", ap, err)
		}
		c.Close()
		if el := time.Since(start); el < happyEyeballsDelay {
			t.Errorf("fallback after %v, before the %v attempt delay", el, happyEyeballsDelay)
		}
		select {
		case <-cancelled:
		case <-time.After(5 * time.Second):
			t.Fatal("the losing attempt was not cancelled")
		}
	})

	t.Run("late primary connection is closed", func(t *testing.T) {
		t.Parallel()
		release := make(chan struct{})
		lateEnd := make(chan net.Conn, 1)
		dl := &dialLog{}
		d := &dialer{dial: func(ctx context.Context, n, a string) (net.Conn, error) {
			if a == "[::1]:80" {
				<-release // completes after the fallback has won
				c, peer := net.Pipe()
				lateEnd <- peer
				return c, nil
			}
			return dl.dial(ctx, n, a)
		}}
		c, ap, err := d.race(context.Background(), []netip.Addr{v6, v4}, 80)
		if err != nil || ap.Addr() != v4 {
			t.Fatalf("got %v, %v; want the IPv4 address", ap, err)
		}
		c.Close()
		close(release)
		peer := <-lateEnd
		peer.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := peer.Read(make([]byte, 1)); err != io.EOF {
			t.Fatalf("late connection's peer read %v, want EOF (closed by the race)", err)
		}
	})

	t.Run("both families fail with the first error", func(t *testing.T) {
		t.Parallel()
		first := errors.New("v6 unreachable")
		dl := &dialLog{fail: map[string]error{"[::1]:80": first, "127.0.0.1:80": errors.New("v4 refused")}}
		d := &dialer{dial: dl.dial}
		if _, _, err := d.race(context.Background(), []netip.Addr{v6, v4}, 80); err != first {
			t.Fatalf("error %v, want %v", err, first)
		}
	})
}

func TestDialStepNames(t *testing.T) {
	t.Parallel()
	for step, want := range map[DialStep]string{DialStepDNS: "dns", DialStepSSRF: "ssrf", DialStepConnect: "connect", DialStepTLS: "tls", numDialSteps: "dial"} {
		if got := step.String(); got != want {
			t.Errorf("DialStep(%d) = %q, want %q", step, got, want)
		}
	}
}
