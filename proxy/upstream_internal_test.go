package proxy

import (
	"io"
	"net"
	"net/netip"
	"testing"
	"time"
)

// These tests drive upstreamPool on loopback TCP pairs: the dialed end
// plays the pooled upstream connection, the accepted end the origin.

// pooled is one upstream connection parked under key, with its origin end.
func pooled(t *testing.T, key poolKey) (*upConn, *net.TCPConn) {
	t.Helper()
	c, origin := tcpPair(t)
	return newUpConn(c, netip.MustParseAddrPort(c.RemoteAddr().String()), key), origin
}

// closedByPool reports whether the pool closed up: its origin end reads EOF.
func closedByPool(t *testing.T, origin *net.TCPConn) bool {
	t.Helper()
	origin.SetReadDeadline(time.Now().Add(2 * time.Second))
	_, err := origin.Read(make([]byte, 1))
	return err == io.EOF
}

// TestPoolNeverSharesAConnectionAcrossTenants: an idle connection to the
// same origin, host, port and scheme is reused only by the tenant that
// parked it.
func TestPoolNeverSharesAConnectionAcrossTenants(t *testing.T) {
	t.Parallel()
	p := newUpstreamPool(4, time.Minute)
	alpha := poolKey{tenant: "alpha", host: "origin.test", port: 80}
	beta := poolKey{tenant: "beta", host: "origin.test", port: 80}
	up, _ := pooled(t, alpha)
	p.put(up)
	if got := p.get(beta); got != nil {
		t.Fatal("tenant beta got tenant alpha's idle connection")
	}
	if got := p.get(poolKey{tenant: "alpha", tls: true, host: "origin.test", port: 80}); got != nil {
		t.Fatal("a TLS request got a plain connection")
	}
	if got := p.get(poolKey{tenant: "alpha", host: "origin.test", port: 8080}); got != nil {
		t.Fatal("another port got the connection")
	}
	if got := p.get(alpha); got != up {
		t.Fatalf("alpha got %v, want its own parked connection", got)
	}
	if got := p.get(alpha); got != nil {
		t.Fatal("one parked connection was handed out twice")
	}
}

func TestPoolReusesTheMostRecentlyParked(t *testing.T) {
	t.Parallel()
	p := newUpstreamPool(4, time.Minute)
	k := poolKey{tenant: "alpha", host: "origin.test", port: 80}
	older, _ := pooled(t, k)
	newer, _ := pooled(t, k)
	p.put(older)
	p.put(newer)
	if got := p.get(k); got != newer {
		t.Fatal("get did not return the most recently parked connection")
	}
	if got := p.get(k); got != older {
		t.Fatal("second get did not return the older connection")
	}
}

// TestPoolDropsConnectionsThatCannotBeReused: get skips (and closes) a
// connection idle past the timeout, one its origin closed and one holding
// bytes nobody asked for, and returns the next usable one.
func TestPoolDropsConnectionsThatCannotBeReused(t *testing.T) {
	t.Parallel()
	k := poolKey{tenant: "alpha", host: "origin.test", port: 80}
	tests := []struct {
		name  string
		spoil func(t *testing.T, up *upConn, origin *net.TCPConn)
		// viaSocket: the spoiling arrives through the kernel, so wait
		// until the socket shows it.
		viaSocket bool
	}{
		{name: "idle past the timeout", spoil: func(_ *testing.T, up *upConn, _ *net.TCPConn) { up.idleAt = time.Now().Add(-time.Hour) }},
		{name: "closed by the origin", spoil: func(_ *testing.T, _ *upConn, origin *net.TCPConn) { origin.Close() }, viaSocket: true},
		{name: "unsolicited bytes", spoil: func(t *testing.T, _ *upConn, origin *net.TCPConn) {
			if _, err := origin.Write([]byte("HTTP/1.1 200 OK\r\n\r\n")); err != nil {
				t.Fatal(err)
			}
		}, viaSocket: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := newUpstreamPool(4, time.Minute)
			good, _ := pooled(t, k)
			bad, origin := pooled(t, k)
			p.put(good)
			p.put(bad)
			tc.spoil(t, bad, origin)
			if tc.viaSocket {
				waitUntil(t, func() bool { return !alive(bad.conn) })
			}
			if got := p.get(k); got != good {
				t.Fatalf("got %p, want the usable connection %p (spoiled %p)", got, good, bad)
			}
			if _, err := bad.conn.Write([]byte("x")); err == nil {
				t.Error("the spoiled connection was left open")
			}
		})
	}
}

// waitUntil polls cond for up to 2 s: the kernel delivers a peer's FIN or
// bytes asynchronously even on loopback.
func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(2 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 2s")
		}
	}
}

func TestPoolPutClosesWhatItCannotKeep(t *testing.T) {
	t.Parallel()
	k := poolKey{tenant: "alpha", host: "origin.test", port: 80}

	t.Run("per-host cap", func(t *testing.T) {
		t.Parallel()
		p := newUpstreamPool(1, time.Minute)
		kept, _ := pooled(t, k)
		extra, extraOrigin := pooled(t, k)
		other, _ := pooled(t, poolKey{tenant: "beta", host: "origin.test", port: 80})
		p.put(kept)
		p.put(extra)
		p.put(other) // the cap is per key: another tenant's slot is its own
		if !closedByPool(t, extraOrigin) {
			t.Error("a connection over the per-host cap was not closed")
		}
		if p.get(k) != kept || p.get(other.key) != other {
			t.Error("the connections within the cap were not kept")
		}
	})

	t.Run("bytes left in its buffer", func(t *testing.T) {
		t.Parallel()
		p := newUpstreamPool(4, time.Minute)
		up, origin := pooled(t, k)
		origin.Write([]byte("late"))
		if _, err := up.br.Peek(1); err != nil {
			t.Fatal(err)
		}
		p.put(up)
		if !closedByPool(t, origin) {
			t.Error("a connection with buffered bytes was parked")
		}
		if p.get(k) != nil {
			t.Error("a connection with buffered bytes was handed out")
		}
	})

	t.Run("after closeAll", func(t *testing.T) {
		t.Parallel()
		p := newUpstreamPool(4, time.Minute)
		parked, parkedOrigin := pooled(t, k)
		p.put(parked)
		p.closeAll()
		if !closedByPool(t, parkedOrigin) {
			t.Error("closeAll left a parked connection open")
		}
		late, lateOrigin := pooled(t, k)
		p.put(late)
		if !closedByPool(t, lateOrigin) {
			t.Error("a connection put after closeAll was parked")
		}
	})
}

// TestPoolSweepEvictsIdleConnectionsOfOtherOrigins: origins nobody asks
// for again do not hold descriptors: a put after half the timeout closes
// every connection idle past it, under any key.
func TestPoolSweepEvictsIdleConnectionsOfOtherOrigins(t *testing.T) {
	t.Parallel()
	p := newUpstreamPool(4, time.Minute)
	stale, staleOrigin := pooled(t, poolKey{tenant: "alpha", host: "old.origin.test", port: 80})
	fresh, _ := pooled(t, poolKey{tenant: "beta", host: "new.origin.test", port: 80})
	p.put(stale)
	stale.idleAt = time.Now().Add(-2 * time.Minute)
	p.lastSweep = time.Now().Add(-time.Minute) // due

	p.put(fresh)
	if !closedByPool(t, staleOrigin) {
		t.Fatal("the idle connection was not evicted")
	}
	p.mu.Lock()
	_, staleKey := p.idle[stale.key]
	n := len(p.idle[fresh.key])
	p.mu.Unlock()
	if staleKey || n != 1 {
		t.Errorf("after the sweep: stale key kept %v, fresh connections %d (want false, 1)", staleKey, n)
	}
}
