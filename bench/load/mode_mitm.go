package load

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"sync/atomic"
)

// mitm measures new inspected tunnels twice: cold, where every operation
// goes to a host the proxy has not seen (it must mint a leaf), and warm,
// where every operation goes to one host whose leaf is cached. Both use a
// fresh TCP connection, PROXY header, CONNECT and TLS handshake per GET, as
// connect-rate does; the client trusts only the proxy's CA.
func (r *runner) mitm(ctx context.Context) ([]Result, error) {
	if r.cfg.MITMRoots == nil || r.cfg.Relay {
		return nil, ErrMITMNotAvailable
	}
	if r.origin.ColdHosts < r.cfg.MITMColdHosts {
		return nil, fmt.Errorf("%w: origin listens on %d cold hosts, mitm wants %d", ErrBadConfig, r.origin.ColdHosts, r.cfg.MITMColdHosts)
	}
	_, port, err := net.SplitHostPort(r.origin.Addr)
	if err != nil {
		return nil, fmt.Errorf("origin address: %w", err)
	}
	base := request{tls: true, fresh: true, path: PathSmall, size: SmallSize, roots: r.cfg.MITMRoots}
	want := ExpectedChecksum(SmallSize)

	// Cold: the count bound is the number of hosts, so each is visited once.
	var next atomic.Int64
	cold := func() (op, func()) {
		tr := r.transport(base)
		buf := make([]byte, 4096)
		return func(ctx context.Context) (int64, error) {
			rq := base
			i := int(next.Add(1) - 1)
			rq.host = net.JoinHostPort(coldHostIP(i).String(), port)
			return getAndVerify(ctx, tr, rq, want, buf)
		}, tr.CloseIdleConnections
	}
	hosts := r.cfg.MITMColdHosts
	coldRes := r.measure(ctx, ModeMITM+"-cold", min(r.cfg.Concurrency, hosts), int64(hosts), r.cfg.Duration, cold)

	// Warm: one priming GET mints the leaf before the clock starts.
	warmRq := base
	warmRq.host = r.origin.Addr
	prime := r.transport(warmRq)
	_, err = getAndVerify(ctx, prime, warmRq, want, make([]byte, 4096))
	prime.CloseIdleConnections()
	if err != nil {
		warm := Result{Mode: ModeMITM + "-warm", Target: r.cfg.Target, Errors: 1,
			ErrorSamples: []string{"prime " + strconv.Quote(warmRq.host) + ": " + err.Error()},
			Note:         "priming request failed: figures withheld"}
		return []Result{coldRes, warm}, nil
	}
	warmRes := r.measure(ctx, ModeMITM+"-warm", r.cfg.Concurrency, r.cfg.Requests, r.cfg.Duration, r.requestOp(warmRq))
	return []Result{coldRes, warmRes}, nil
}
