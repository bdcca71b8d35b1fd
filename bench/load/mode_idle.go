package load

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// verifyTimeout bounds the final check of each held tunnel.
const verifyTimeout = 10 * time.Second

// idle opens Tunnels tunnels (Concurrency at a time, within Duration), holds
// them for Hold, samples the proxy's RSS, then proves every tunnel still
// carries traffic with one plain GET through it. The RSS growth divided by
// the tunnel count is the memory cost of an idle tunnel.
func (r *runner) idle(ctx context.Context) (Result, error) {
	t := &tally{}
	m := measurement{mode: ModeIdle, target: r.cfg.Target, concurrency: r.cfg.Concurrency, t: t}
	var err error
	m.clientBefore, err = readProc("self")
	m.clientSampleOK = err == nil
	m.proxyBefore = r.sampleProxy(t)
	rtBefore, rtErr := r.sampleRuntime(ctx)

	n := r.cfg.Tunnels
	conns := make([]net.Conn, n)
	defer func() {
		for _, c := range conns {
			if c != nil {
				_ = c.Close()
			}
		}
	}()
	openCtx, cancel := context.WithTimeout(ctx, r.cfg.Duration)
	defer cancel()
	stopProgress := r.progress(ModeIdle, t)
	// Resumption keeps the opening phase short; the proxy splices the
	// handshake either way, so its memory per tunnel is the same.
	cache := tls.NewLRUClientSessionCache(64)
	var next atomic.Int64
	var opened atomic.Int64
	start := time.Now()
	var wg sync.WaitGroup
	for range min(r.cfg.Concurrency, n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var lats []time.Duration
			defer func() { t.addLatencies(lats) }()
			for openCtx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				t0 := time.Now()
				c, err := r.openIdleTunnel(openCtx, cache)
				if err != nil {
					if openCtx.Err() == nil {
						t.recordError(fmt.Errorf("open tunnel: %w", err))
					}
					continue
				}
				lats = append(lats, time.Since(t0))
				conns[i] = c
				opened.Add(1)
			}
		}()
	}
	wg.Wait()
	m.elapsed = time.Since(start)
	stopProgress()
	if missing := int64(n) - opened.Load() - t.errs.Load(); missing > 0 {
		// Tunnels cut off by the time bound are failures too: one sample, all counted.
		t.errs.Add(missing - 1)
		t.recordError(fmt.Errorf("opened %d of %d tunnels within %s", opened.Load(), n, r.cfg.Duration))
	}

	select {
	case <-time.After(r.cfg.Hold):
	case <-ctx.Done():
	}
	m.proxyAfter = r.sampleProxy(t)
	rtAfter, err := r.sampleRuntime(ctx)
	rtErr = errors.Join(rtErr, err)
	if after, err := readProc("self"); err == nil && m.clientSampleOK {
		m.clientAfter = after
	} else {
		m.clientSampleOK = false
	}

	r.verifyTunnels(conns, t)
	res := m.result()
	if res.OK() && m.proxyBefore != nil && m.proxyAfter != nil {
		res.RSSPerTunnelKiB = ptr(float64(m.proxyAfter.rssKiB-m.proxyBefore.rssKiB) / float64(n))
	}
	switch {
	case r.cfg.ProxyMetrics == "" || !res.OK():
	case rtErr != nil:
		res.Note = fmt.Sprintf("runtime figures withheld: %v", rtErr)
	default:
		per := func(a, b float64) *float64 { return ptr((b - a) / float64(n)) }
		res.GoroutinesPerTunnel = per(rtBefore.goroutines, rtAfter.goroutines)
		res.StackKiBPerTunnel = per(rtBefore.stackBytes/1024, rtAfter.stackBytes/1024)
		res.HeapKiBPerTunnel = per(rtBefore.heapBytes/1024, rtAfter.heapBytes/1024)
	}
	return res, nil
}

// openIdleTunnel opens a tunnel, runs TLS and one GET through it, as a
// pod's HTTPS connection does: a tunnel that never sends a ClientHello is refused
// under egressd's default sni_check: enforce, and would not be idle HTTPS.
func (r *runner) openIdleTunnel(ctx context.Context, cache tls.ClientSessionCache) (net.Conn, error) {
	c, err := r.hw.openTunnel(ctx, r.origin.Addr, r.cfg.Relay)
	if err != nil {
		return nil, err
	}
	host, _, _ := net.SplitHostPort(r.origin.Addr)
	tc := tls.Client(c, &tls.Config{ServerName: host, RootCAs: r.origin.Roots, NextProtos: []string{"http/1.1"},
		MinVersion: tls.VersionTLS12, ClientSessionCache: cache})
	if err := tc.HandshakeContext(ctx); err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("TLS through the tunnel: %w", err)
	}
	// One request first, so the tunnel idles as a keep-alive connection
	// does (the origin's IdleTimeout, 5 min) rather than as a connection
	// that never sent a request (its ReadHeaderTimeout, 10 s).
	if err := getThrough(tc, r.origin.Addr, ExpectedChecksum(SmallSize), make([]byte, 4096)); err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("first GET through the tunnel: %w", err)
	}
	_ = c.SetDeadline(time.Time{})
	return tc, nil
}

// verifyTunnels sends one GET through each open tunnel, inside its TLS.
func (r *runner) verifyTunnels(conns []net.Conn, t *tally) {
	want := ExpectedChecksum(SmallSize)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(r.cfg.Concurrency, len(conns)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 4096)
			for {
				i := int(next.Add(1) - 1)
				if i >= len(conns) {
					return
				}
				c := conns[i]
				if c == nil {
					continue // its failure to open is already counted
				}
				if err := getThrough(c, r.origin.Addr, want, buf); err != nil {
					t.recordError(fmt.Errorf("held tunnel: %w", err))
					continue
				}
				t.ops.Add(1)
			}
		}()
	}
	wg.Wait()
}

func getThrough(c net.Conn, host string, want uint32, buf []byte) error {
	_ = c.SetDeadline(time.Now().Add(verifyTimeout))
	if _, err := fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\n\r\n", PathSmall, host); err != nil {
		return fmt.Errorf("write GET: %w", err)
	}
	resp, err := http.ReadResponse(bufio.NewReaderSize(c, 4096), nil)
	if err != nil {
		return fmt.Errorf("read response: %w", err)
	}
	defer resp.Body.Close()
	_, err = verifyBody(resp, SmallSize, want, buf)
	return err
}
