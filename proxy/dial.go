package proxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/egressd/egressd/acl"
)

// Resolver is the part of *net.Resolver the dialer uses; tests inject their own
// so no test ever asks real DNS.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// DialFunc dials one already-checked IP:port.
type DialFunc func(ctx context.Context, network, address string) (net.Conn, error)

// dialer is the single path to upstreams for both plain HTTP and CONNECT:
// resolve once, check every answer, then dial only addresses that passed.
// Dialing the checked IP (never the name) is what defeats DNS rebinding.
type dialer struct {
	resolver Resolver
	dial     DialFunc
	timeout  time.Duration
	observe  func(dns, connect time.Duration, err error)
}

// DialStep is the step of reaching an upstream that failed.
type DialStep uint8

const (
	DialStepDNS     DialStep = iota // resolving the name
	DialStepSSRF                    // every address was refused by the dial check
	DialStepConnect                 // the TCP connect
	DialStepTLS                     // the upstream TLS handshake or its verification
	numDialSteps
)

var dialStepNames = [numDialSteps]string{"dns", "ssrf", "connect", "tls"}

func (s DialStep) String() string {
	if s >= numDialSteps {
		return "dial"
	}
	return dialStepNames[s]
}

// DialError says which step of reaching an upstream failed.
type DialError struct {
	Step     DialStep
	Host     string
	Decision acl.Decision // for DialStepSSRF: the policy verdict
	Err      error
}

func (e *DialError) Error() string {
	if e.Step == DialStepSSRF {
		return fmt.Sprintf("dial %s: destination address not allowed (%s)", e.Host, e.Err)
	}
	return fmt.Sprintf("%s %s: %v", e.Step, e.Host, e.Err)
}

func (e *DialError) Unwrap() error { return e.Err }

// happyEyeballsDelay is the RFC 8305 §5 "connection attempt delay" that
// net.Dialer also uses before racing the other address family.
const happyEyeballsDelay = 300 * time.Millisecond

func (d *dialer) dialTarget(ctx context.Context, t acl.Target, check func(netip.Addr) acl.Decision) (net.Conn, netip.AddrPort, error) {
	ctx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	start := time.Now()
	var dnsTime time.Duration // zero for IP literals: nothing was resolved
	addrs := []netip.Addr{t.Addr}
	if !t.Addr.IsValid() {
		var err error
		addrs, err = d.resolver.LookupNetIP(ctx, "ip", t.Host)
		if err == nil && len(addrs) == 0 {
			err = errors.New("no addresses")
		}
		if err != nil {
			d.report(time.Since(start), 0, err)
			return nil, netip.AddrPort{}, &DialError{Step: DialStepDNS, Host: t.Host, Err: err}
		}
	}
	dnsDone := time.Now()
	if !t.Addr.IsValid() {
		dnsTime = dnsDone.Sub(start)
	}
	// Any internal answer refuses the whole name: a mix of public and
	// private answers is the shape of a rebinding attempt.
	for i, a := range addrs {
		a = a.Unmap()
		addrs[i] = a
		if dec := check(a); dec.Action != acl.Allow {
			err := &DialError{Step: DialStepSSRF, Host: t.Host, Decision: dec, Err: fmt.Errorf("%s is %s", a, dec.Rule)}
			d.report(dnsTime, 0, err)
			return nil, netip.AddrPort{}, err
		}
	}
	conn, ap, err := d.race(ctx, addrs, t.Port)
	d.report(dnsTime, time.Since(dnsDone), err)
	if err != nil {
		return nil, netip.AddrPort{}, &DialError{Step: DialStepConnect, Host: t.Host, Err: err}
	}
	return conn, ap, nil
}

func (d *dialer) report(dns, connect time.Duration, err error) {
	if d.observe != nil {
		d.observe(dns, connect, err)
	}
}

// race dials the first address family in order and, after a short delay,
// the other family in parallel, the way net.Dialer does for a host name.
func (d *dialer) race(ctx context.Context, addrs []netip.Addr, port uint16) (net.Conn, netip.AddrPort, error) {
	var primary, fallback []netip.Addr
	for _, a := range addrs {
		if a.Is4() == addrs[0].Is4() {
			primary = append(primary, a)
		} else {
			fallback = append(fallback, a)
		}
	}
	if len(fallback) == 0 {
		return d.serial(ctx, primary, port)
	}
	type result struct {
		c   net.Conn
		ap  netip.AddrPort
		err error
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	results := make(chan result, 2)
	run := func(list []netip.Addr) {
		c, ap, err := d.serial(ctx, list, port)
		results <- result{c, ap, err}
	}
	go run(primary)
	timer := time.NewTimer(happyEyeballsDelay)
	defer timer.Stop()
	var firstErr error
	pending, fallbackStarted := 1, false
	for {
		select {
		case <-timer.C:
			if !fallbackStarted {
				fallbackStarted = true
				pending++
				go run(fallback)
			}
		case r := <-results:
			pending--
			if r.err == nil {
				cancel()
				// The slower racer may still succeed; close it when it lands.
				if pending > 0 {
					go func() {
						if late := <-results; late.c != nil {
							late.c.Close()
						}
					}()
				}
				return r.c, r.ap, nil
			}
			if firstErr == nil {
				firstErr = r.err
			}
			if !fallbackStarted {
				fallbackStarted = true
				pending++
				go run(fallback)
			} else if pending == 0 {
				return nil, netip.AddrPort{}, firstErr
			}
		}
	}
}

func (d *dialer) serial(ctx context.Context, addrs []netip.Addr, port uint16) (net.Conn, netip.AddrPort, error) {
	var firstErr error
	for _, a := range addrs {
		ap := netip.AddrPortFrom(a, port)
		c, err := d.dial(ctx, "tcp", ap.String())
		if err == nil {
			return c, ap, nil
		}
		if firstErr == nil {
			firstErr = err
		}
		if ctx.Err() != nil {
			break
		}
	}
	return nil, netip.AddrPort{}, firstErr
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()
}

// dialCheck is the per-address SSRF check for one request. A report-only
// verdict lets the dial proceed but marks the entry, so the access log
// shows would_deny with the rule that would have refused it.
func dialCheck(pol Policy, e *entry) func(netip.Addr) acl.Decision {
	return func(ip netip.Addr) acl.Decision {
		d := pol.CheckDial(e.dec.Tenant, ip, e.target)
		if d.Action == acl.Allow && d.WouldDeny && !e.dec.WouldDeny {
			e.dec.WouldDeny, e.dec.Rule, e.dec.Reason = true, d.Rule, d.Reason
		}
		return d
	}
}
