package proxy_test

// Resource bounds: thousands of idle and slowloris connections must not
// slow down real traffic, the header and idle timeouts must actually free
// them, the connection limit must answer instead of queueing, and memory
// per connection must stay small. Not parallel: they count descriptors,
// goroutines and the heap of the whole process.

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/egressd/egressd/proxy"
)

// ppOff is proxy_protocol off: the socket is the identity, and an idle
// connection is bounded by client_idle_timeout rather than the PROXY
// header timeout.
func ppOff(c *proxy.Config) {
	c.ProxyProtocol = proxy.PPOff
	c.TrustedProxies = nil
}

// openConns dials n connections to addr and returns them; each costs one
// descriptor on each side, both in this process.
func openConns(t *testing.T, addr string, n int) []*net.TCPConn {
	t.Helper()
	conns := make([]*net.TCPConn, 0, n)
	t.Cleanup(func() {
		for _, c := range conns {
			c.Close()
		}
	})
	for range n {
		c, err := net.DialTimeout("tcp", addr, ioTimeout)
		if err != nil {
			t.Fatalf("dial connection %d of %d: %v", len(conns)+1, n, err)
		}
		conns = append(conns, c.(*net.TCPConn))
	}
	return conns
}

// allClosed waits until the proxy has closed every conn (a read
// returns EOF or a reset, not a timeout) and returns how many it closed.
func allClosed(conns []*net.TCPConn, by time.Time) int {
	closed := 0
	var b [1]byte
	for _, c := range conns {
		c.SetReadDeadline(by)
		n, err := c.Read(b[:])
		var ne net.Error
		if n == 0 && err != nil && !(errors.As(err, &ne) && ne.Timeout()) {
			closed++
		}
	}
	return closed
}

// heapInUse is the live heap and goroutine stacks after a full GC.
func heapInUse() uint64 {
	runtime.GC()
	runtime.GC() // a second cycle empties the sync.Pools the first one aged
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse + ms.StackInuse
}

// TestIdleAndSlowlorisAreBounded holds 2,000 idle connections and 200 slowloris
// connections (one header byte every 100ms) while normal requests keep a
// low latency; then read_header_timeout frees the slowloris ones first and
// client_idle_timeout the idle ones, and everything they held is returned.
func TestIdleAndSlowlorisAreBounded(t *testing.T) {
	const (
		idleConns     = 2000
		slowConns     = 200
		headerTimeout = 2 * time.Second
		idleTimeout   = 4 * time.Second
		maxLatency    = time.Second // generous: -race on a shared 2-core box
	)
	// Connection: close keeps the proxy's upstream pool empty, so every
	// descriptor and goroutine after the test is a leak, not a pooled conn.
	// Both ends of every connection are descriptors of this process. Go
	// raises the soft limit to the hard one at start; below what we need,
	// say so rather than fail on a dial.
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err == nil && lim.Cur < 2*(idleConns+slowConns)+500 {
		t.Skipf("RLIMIT_NOFILE is %d; this test needs about %d descriptors", lim.Cur, 2*(idleConns+slowConns)+500)
	}
	origin := startHTTPOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Connection", "close")
		io.WriteString(w, "hello")
	}))
	p := startProxy(t, withConfig(func(c *proxy.Config) {
		ppOff(c)
		c.ReadHeaderTimeout = headerTimeout
		c.ClientIdleTimeout = idleTimeout
	}))
	getVia(t, p, origin+"/warm", 0) // pools and lazily built state are not growth
	before := resourceSnapshot(t)
	heapBefore := heapInUse()

	idleStart := time.Now()
	idle := openConns(t, p.addr, idleConns)
	slowStart := time.Now()
	slow := openConns(t, p.addr, slowConns)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		// One writer for all of them: a header that never ends, a byte per
		// connection per tick. Write errors mean the proxy closed it.
		msg := []byte("GET http://127.0.0.1/ HTTP/1.1\r\nX-Slow: ")
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			for _, c := range slow {
				c.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
				if i < len(msg) {
					c.Write(msg[i : i+1])
				} else {
					c.Write([]byte{'a'})
				}
			}
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	})
	stopSlow := sync.OnceFunc(func() { close(stop); wg.Wait() })
	defer stopSlow()

	waitFor(t, 5*time.Second, "the proxy to hold every connection", func() bool {
		return p.srv.OpenConnections() >= idleConns+slowConns
	})
	heapPeak := heapInUse()
	perConn := (int64(heapPeak) - int64(heapBefore)) / (idleConns + slowConns)
	t.Logf("heap+stacks: %d KiB before, %d KiB with %d connections open (%d bytes per connection, both ends)",
		heapBefore>>10, heapPeak>>10, idleConns+slowConns, perConn)
	// Per server connection: a goroutine stack, 8 KiB of bufio, the conn
	// state; plus the client end in this process. 64 KiB is 3-4x that.
	if perConn > 64<<10 {
		t.Errorf("%d bytes of heap and stack per open connection, want under 64 KiB", perConn)
	}

	var worst time.Duration
	for i := range 20 {
		start := time.Now()
		status, body := getVia(t, p, fmt.Sprintf("%s/%d", origin, i), 0)
		el := time.Since(start)
		worst = max(worst, el)
		if status != 200 || string(body) != "hello" {
			t.Fatalf("request %d under load: %d %q, want 200 hello", i, status, body)
		}
	}
	t.Logf("worst latency of 20 requests with %d idle and %d slowloris connections open: %s", idleConns, slowConns, worst)
	if worst > maxLatency {
		t.Errorf("worst request latency %s under idle/slowloris load, want under %s", worst, maxLatency)
	}

	// read_header_timeout runs from the first byte of a head, however
	// slowly the rest arrives.
	if n := allClosed(slow, slowStart.Add(headerTimeout+3*time.Second)); n != slowConns {
		t.Errorf("%d of %d slowloris connections closed by read_header_timeout, want all", n, slowConns)
	}
	if el := time.Since(slowStart); el < headerTimeout-100*time.Millisecond {
		t.Errorf("slowloris connections closed after %s, before read_header_timeout (%s)", el, headerTimeout)
	}
	if time.Since(idleStart) < idleTimeout-500*time.Millisecond {
		if n := p.srv.OpenConnections(); n < idleConns {
			t.Errorf("%d connections open after the slowloris ones went, want the %d idle ones still there", n, idleConns)
		}
	}
	if n := allClosed(idle, idleStart.Add(idleTimeout+5*time.Second)); n != idleConns {
		t.Errorf("%d of %d idle connections closed by client_idle_timeout, want all", n, idleConns)
	}
	if el := time.Since(idleStart); el < idleTimeout-100*time.Millisecond {
		t.Errorf("idle connections closed after %s, before client_idle_timeout (%s)", el, idleTimeout)
	}
	waitFor(t, 5*time.Second, "the proxy to let go of every connection", func() bool { return p.srv.OpenConnections() == 0 })

	for _, c := range append(idle, slow...) {
		c.Close()
	}
	stopSlow()
	if n := panicCount(p); n != 0 {
		t.Errorf("the proxy logged %d panics", n)
	}
	before.check(t)
	heapAfter := heapInUse()
	t.Logf("heap+stacks after they closed: %d KiB", heapAfter>>10)
	if grown := int64(heapAfter) - int64(heapBefore); grown > 16<<20 {
		t.Errorf("heap and stacks grew by %d KiB after %d connections came and went, want under 16 MiB", grown>>10, idleConns+slowConns)
	}
}

// TestMaxConnectionsAnswers: above max_connections a new connection
// gets a 503 at once and is closed, instead of waiting in the accept
// queue; the rejection is counted; a freed slot is usable again.
func TestMaxConnectionsAnswers(t *testing.T) {
	const limit = 20
	reg := prometheus.NewRegistry()
	origin := helloOrigin(t)
	p := startProxy(t, withMetrics(reg), withConfig(func(c *proxy.Config) {
		ppOff(c)
		c.MaxConnections = limit
		c.TenantConnectionShare = 1 // one tenant fills the global cap here
	}))
	held := openConns(t, p.addr, limit)
	waitFor(t, 5*time.Second, "the proxy to hold the limit", func() bool { return p.srv.OpenConnections() == limit })

	for i := range 3 {
		c := dial(t, p.addr)
		start := time.Now()
		c.SetDeadline(time.Now().Add(2 * time.Second))
		// The 503 is written before any byte is read: the client need not
		// send anything to be told.
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("connection %d over the limit: %v, want a 503", i+1, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("X-Proxy-Error") != "connection_limit" || !resp.Close {
			t.Errorf("over the limit: %d X-Proxy-Error=%q close=%v (%q), want 503 connection_limit and close",
				resp.StatusCode, resp.Header.Get("X-Proxy-Error"), resp.Close, body)
		}
		if el := time.Since(start); el > 500*time.Millisecond {
			t.Errorf("503 took %s, want it at once rather than queued", el)
		}
		c.Close()
	}
	wantMetric(t, reg, "egressd_limit_rejections_total", map[string]string{"scope": "global", "tenant": "unknown"}, 3)
	wantMetric(t, reg, "egressd_connection_limit", nil, limit)

	held[0].Close()
	waitFor(t, 5*time.Second, "a slot to free up", func() bool { return p.srv.OpenConnections() == limit-1 })
	if status, body := getVia(t, p, origin+"/after", 0); status != 200 || string(body) != "hello" {
		t.Errorf("after a slot freed: %d %q, want 200 hello", status, body)
	}
}
