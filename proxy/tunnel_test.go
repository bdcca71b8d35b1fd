package proxy_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/sync/errgroup"

	"github.com/egressd/egressd/proxy"
)

// echoThrough opens a tunnel to an echo server, sends payload, half-closes
// and checks that exactly payload comes back. When pipeline is set the
// first KiB rides in the same write as the CONNECT head, the way eager
// clients send a TLS ClientHello, so it sits in the proxy's read buffer.
// It returns errors instead of failing: it runs on many goroutines.
func echoThrough(proxyAddr, target string, payload []byte, pipeline bool) error {
	c, err := net.DialTimeout("tcp", proxyAddr, ioTimeout)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(3 * ioTimeout))
	head := []byte("CONNECT " + target + " HTTP/1.1\r\nHost: " + target + "\r\n\r\n")
	rest := payload
	if pipeline {
		head = append(head, payload[:1024]...)
		rest = payload[1024:]
	}
	if _, err := c.Write(head); err != nil {
		return fmt.Errorf("write CONNECT: %w", err)
	}
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, &http.Request{Method: "CONNECT"})
	if err != nil {
		return fmt.Errorf("read CONNECT response: %w", err)
	}
	if resp.StatusCode != 200 {
		return fmt.Errorf("CONNECT status %d", resp.StatusCode)
	}
	werr := make(chan error, 1)
	go func() {
		_, err := c.Write(rest)
		if err == nil {
			err = c.(*net.TCPConn).CloseWrite()
		}
		werr <- err
	}()
	got, err := io.ReadAll(br)
	if err != nil {
		return fmt.Errorf("read echo: %w", err)
	}
	if err := <-werr; err != nil {
		return fmt.Errorf("write payload: %w", err)
	}
	if len(got) != len(payload) || sum(got) != sum(payload) {
		return fmt.Errorf("echo: got %d bytes sha256 %s, want %d bytes sha256 %s", len(got), sum(got), len(payload), sum(payload))
	}
	return nil
}

func TestConcurrentTunnelsEcho(t *testing.T) {
	t.Parallel()
	const tunnels, size = 50, 256 << 10
	echo := startEcho(t)
	p := startProxy(t)
	var g errgroup.Group
	for i := range tunnels {
		payload := randomBytes(t, size)
		g.Go(func() error {
			if err := echoThrough(p.addr, echo, payload, i%2 == 0); err != nil {
				return fmt.Errorf("tunnel %d: %w", i, err)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "one access log line per tunnel", func() bool { return len(p.accessEntries()) == tunnels })
	for _, e := range p.accessEntries() {
		if e["kind"] != "connect" || e["status"] != int64(200) || e["bytes_up"] != int64(size) || e["bytes_down"] != int64(size) || e["upstream"] != echo {
			t.Errorf("access log kind=%v status=%v up=%v down=%v upstream=%v, want connect 200 %d %d %s",
				e["kind"], e["status"], e["bytes_up"], e["bytes_down"], e["upstream"], size, size, echo)
		}
	}
}

// TestConnectFailures: 200 is sent only once the upstream is connected; a
// failed dial gets a proxy error and the tunnel never opens.
func TestConnectFailures(t *testing.T) {
	t.Parallel()
	refused := freePort(t)
	p := startProxy(t, withResolver(loopbackResolver("up.origin.test")))
	tests := []struct {
		name   string
		target string
		status int
		reason string
		keep   bool
	}{
		{name: "refused port", target: refused, status: 502, reason: "dial"},
		{name: "name that does not resolve", target: "missing.origin.test:443", status: 502, reason: "dns"},
		{name: "name the policy does not allow", target: "elsewhere.invalid:443", status: 403, reason: "acl", keep: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := dial(t, p.addr)
			br := bufio.NewReader(c)
			resp, body := exchange(t, c, br, "CONNECT "+tc.target+" HTTP/1.1\r\nHost: "+tc.target+"\r\n\r\n", "CONNECT")
			if resp.StatusCode != tc.status || resp.Header.Get("X-Proxy-Error") != tc.reason {
				t.Fatalf("%d %s (%q), want %d %s and never 200", resp.StatusCode, resp.Header.Get("X-Proxy-Error"), body, tc.status, tc.reason)
			}
			if tc.keep {
				// A policy answer leaves the connection usable.
				resp, _ = exchange(t, c, br, "CONNECT "+tc.target+" HTTP/1.1\r\nHost: "+tc.target+"\r\n\r\n", "CONNECT")
				if resp.StatusCode != tc.status {
					t.Errorf("second CONNECT on the connection: %d, want %d", resp.StatusCode, tc.status)
				}
			} else {
				// Nothing follows the error, in particular no late 200.
				expectEOF(t, c, br)
			}
			host, _, _ := strings.Cut(tc.target, ":")
			e := p.waitAccess(t, tc.name, func(e map[string]any) bool { return e["kind"] == "connect" && e["host"] == host })
			if e["status"] != int64(tc.status) || e["error"] != tc.reason {
				t.Errorf("access log status=%v error=%v, want %d %s", e["status"], e["error"], tc.status, tc.reason)
			}
		})
	}
}

// A server-speaks-first protocol (SSH, SMTP) through CONNECT with the
// default policy: the banner should arrive promptly.
func TestServerFirstBannerIsPrompt(t *testing.T) {
	banner := startTCPServer(t, func(c *net.TCPConn) {
		io.WriteString(c, "SSH-2.0-test\r\n")
		io.Copy(io.Discard, c)
	})
	p := startProxy(t)
	_, br := connectVia(t, p, banner)
	start := time.Now()
	line, err := br.ReadString('\n')
	if el := time.Since(start); err != nil || el > time.Second {
		t.Fatalf("banner %q after %s (%v), want it within 1s", line, el, err)
	}
}

func TestTunnelIdleTimeout(t *testing.T) {
	t.Parallel()
	echo := startEcho(t)
	// Gaps a quarter of the timeout: wide enough that a loaded CI machine
	// (2 cores, -race) does not turn scheduling delay into "idle".
	p := startProxy(t, withConfig(func(c *proxy.Config) { c.TunnelIdleTimeout = time.Second }))
	c, br := connectVia(t, p, echo)
	// Traffic keeps it open past the idle timeout...
	for range 4 {
		io.WriteString(c, "ping")
		buf := make([]byte, 4)
		if _, err := io.ReadFull(br, buf); err != nil {
			t.Fatalf("tunnel closed while busy: %v", err)
		}
		time.Sleep(250 * time.Millisecond)
	}
	// ...and silence closes it.
	start := time.Now()
	expectEOF(t, c, br)
	if el := time.Since(start); el > 4*time.Second {
		t.Errorf("idle tunnel closed after %s, want about 1s", el)
	}
}

// settle runs the GC (Go keeps spare splice pipes in a sync.Pool until
// two cycles pass, and closes them in finalizers) and reports whether the
// descriptor count is back to at most base.
func settle(t *testing.T, base int) bool {
	runtime.GC()
	runtime.GC()
	return openFDs(t) <= base
}

// TestTunnelsLeakNothing runs tunnels and checks that once the clients
// close, every goroutine and descriptor they used is gone, with the
// server still running and again after Shutdown. Not parallel, so no other
// test's goroutines come and go while it counts.
func TestTunnelsLeakNothing(t *testing.T) {
	echo := startEcho(t)
	p := startProxy(t)
	// Warm up once so lazily started runtime pieces are in the baseline.
	if err := echoThrough(p.addr, echo, randomBytes(t, 4096), false); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "warm-up connection to finish", func() bool { return p.srv.OpenConnections() == 0 })
	runtime.GC()
	runtime.GC()
	baseFDs := openFDs(t)
	baseG := goleak.IgnoreCurrent()

	var g errgroup.Group
	for i := range 20 {
		payload := randomBytes(t, 128<<10)
		g.Go(func() error { return echoThrough(p.addr, echo, payload, i%2 == 0) })
	}
	// Tunnels the client abandons mid-stream must be torn down too.
	for range 5 {
		c, br := connectVia(t, p, echo)
		io.WriteString(c, "half a conversation")
		br.Peek(1)
		c.Close()
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "client connections to finish", func() bool { return p.srv.OpenConnections() == 0 })
	// Find retries for about two seconds before reporting.
	if err := goleak.Find(baseG); err != nil {
		t.Fatalf("with the server still running: %v", err)
	}
	waitFor(t, 5*time.Second, fmt.Sprintf("descriptors back to %d", baseFDs), func() bool { return settle(t, baseFDs) })

	if err := p.shutdown(t); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if err := goleak.Find(baseG); err != nil {
		t.Fatalf("after Shutdown: %v", err)
	}
}
