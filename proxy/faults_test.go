package proxy_test

// Fault injection with real loopback peers: each case breaks one side of a
// request on purpose and checks what the client got, the access-log line,
// the metric an operator would alert on, and that the running server holds
// no goroutine or descriptor for it afterwards. None of these tests is
// parallel, because the leak check counts the whole process.

import (
	"bufio"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap/zaptest/observer"
	"golang.org/x/crypto/bcrypt"

	"github.com/egressd/egressd/acl"
	"github.com/egressd/egressd/proxy"
)

// truncatingOrigin answers every request with a head promising more
// body than it sends, then ends the connection after sent bytes: with an
// RST when reset is set, else by stalling until the proxy gives up.
func truncatingOrigin(t *testing.T, head string, body []byte, reset bool) string {
	t.Helper()
	return startTCPServer(t, func(c *net.TCPConn) {
		br := bufio.NewReader(c)
		if _, err := readRawHead(br); err != nil {
			return
		}
		c.Write(append([]byte(head), body...))
		if reset {
			c.SetLinger(0) // close with RST, not FIN
			return
		}
		io.Copy(io.Discard, br) // stall; returns when the proxy cuts the leg
	})
}

// TestUpstreamBreaksMidBody: an upstream that dies or stalls after the
// response head has gone out leaves the client a short body and a closed
// connection (the only honest signal left once a 200 is sent), never a
// keep-alive connection that looks complete.
func TestUpstreamBreaksMidBody(t *testing.T) {
	body := make([]byte, 20<<10)
	for i := range body {
		body[i] = byte('a' + i%26)
	}
	cases := []struct {
		name  string
		head  string
		reset bool
		// wantMin is the least the client must get: everything the origin
		// sent when it stalled (a FIN-less stall loses nothing), nothing
		// when it reset (an RST may discard what the kernel still held).
		wantMin int
		within  time.Duration
	}{
		{name: "reset, buffered length", head: "HTTP/1.1 200 OK\r\nContent-Length: 40000\r\n\r\n", reset: true, within: 3 * time.Second},
		{name: "reset, spliced length", head: "HTTP/1.1 200 OK\r\nContent-Length: 1048576\r\n\r\n", reset: true, within: 3 * time.Second},
		{name: "stall, buffered length", head: "HTTP/1.1 200 OK\r\nContent-Length: 40000\r\n\r\n", wantMin: len(body), within: 3 * time.Second},
		{name: "stall, spliced length", head: "HTTP/1.1 200 OK\r\nContent-Length: 1048576\r\n\r\n", wantMin: len(body), within: 3 * time.Second},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			origin := truncatingOrigin(t, tc.head, body, tc.reset)
			p := startProxy(t, withMetrics(reg), withConfig(func(c *proxy.Config) {
				c.UpstreamIdleTimeout = 300 * time.Millisecond
			}))
			before := resourceSnapshot(t)

			c := dial(t, p.addr)
			br := bufio.NewReader(c)
			start := time.Now()
			fmt.Fprintf(c, "GET http://%s/big HTTP/1.1\r\nHost: %s\r\n\r\n", origin, origin)
			resp, err := http.ReadResponse(br, &http.Request{Method: "GET"})
			if err != nil {
				t.Fatalf("read response head: %v", err)
			}
			got, err := io.ReadAll(resp.Body)
			if !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Errorf("body read ended with %v after %d bytes, want io.ErrUnexpectedEOF", err, len(got))
			}
			if el := time.Since(start); el > tc.within {
				t.Errorf("client waited %s for the cut, want under %s", el, tc.within)
			}
			if len(got) < tc.wantMin || len(got) > len(body) || string(got) != string(body[:len(got)]) {
				t.Errorf("client got %d bytes (intact prefix: %v), want %d..%d bytes of the origin's body",
					len(got), string(got) == string(body[:min(len(got), len(body))]), tc.wantMin, len(body))
			}
			expectEOF(t, c, br)
			c.Close()

			e := p.waitKind(t, "", "127.0.0.1", "")
			if e["status"] != int64(200) || e["decision"] != "allow" || e["bytes_down"] != int64(len(got)) {
				t.Errorf("access log status=%v decision=%v bytes_down=%v, want 200 allow %d", e["status"], e["decision"], e["bytes_down"], len(got))
			}
			wantMetric(t, reg, "egressd_transferred_bytes_total", map[string]string{"tenant": demoTenant, "direction": "down"}, float64(len(got)))
			before.check(t)
		})
	}
}

// TestUpstreamStallsBeforeHeaders: an origin that accepts the request
// and never answers gets a 504 after response_header_timeout, and the
// upstream leg is closed rather than parked in the pool.
func TestUpstreamStallsBeforeHeaders(t *testing.T) {
	reg := prometheus.NewRegistry()
	upstreamClosed := make(chan struct{}, 1)
	origin := startTCPServer(t, func(c *net.TCPConn) {
		io.Copy(io.Discard, c) // read the request, answer nothing
		upstreamClosed <- struct{}{}
	})
	p := startProxy(t, withMetrics(reg), withConfig(func(c *proxy.Config) {
		c.ResponseHeaderTimeout = 300 * time.Millisecond
	}))
	before := resourceSnapshot(t)

	c := dial(t, p.addr)
	start := time.Now()
	resp, _ := exchange(t, c, bufio.NewReader(c), "GET http://"+origin+"/slow HTTP/1.1\r\nHost: "+origin+"\r\n\r\n", "GET")
	el := time.Since(start)
	if resp.StatusCode != http.StatusGatewayTimeout || resp.Header.Get("X-Proxy-Error") != "upstream_timeout" {
		t.Errorf("got %d X-Proxy-Error=%q, want 504 upstream_timeout", resp.StatusCode, resp.Header.Get("X-Proxy-Error"))
	}
	if el < 250*time.Millisecond || el > 3*time.Second {
		t.Errorf("504 after %s, want about the 300ms response_header_timeout", el)
	}
	select {
	case <-upstreamClosed:
	case <-time.After(3 * time.Second):
		t.Error("upstream leg still open after the 504")
	}
	c.Close()

	checkAccessFields(t, p.waitKind(t, "", "127.0.0.1", ""), map[string]string{"status": "504", "error": "upstream_timeout", "decision": "allow"})
	wantMetric(t, reg, "egressd_requests_total", map[string]string{"tenant": demoTenant, "decision": "error", "status_class": "5xx"}, 1)
	before.check(t)
}

// slowResolver blocks until the lookup's context ends, as a resolver
// whose server never answers does, and fails the way net.Resolver does.
func slowResolver() resolverFunc {
	return func(ctx context.Context, host string) ([]netip.Addr, error) {
		<-ctx.Done()
		return nil, &net.DNSError{Err: "i/o timeout", Name: host, IsTimeout: true}
	}
}

// hangingDial never connects: every attempt waits out its context, as
// a SYN to a black-holed address does.
func hangingDial(ctx context.Context, _, _ string) (net.Conn, error) {
	<-ctx.Done()
	return nil, &net.OpError{Op: "dial", Net: "tcp", Err: ctx.Err()}
}

// TestDialFaults: every way of failing to reach an upstream gets the
// documented status and reason, the same for a forward request and a
// CONNECT, and is counted once under the right dial-error reason.
func TestDialFaults(t *testing.T) {
	refused := freePort(t)
	_, refusedPort, _ := net.SplitHostPort(refused)
	cases := []struct {
		name       string
		target     string // host:port
		resolver   proxy.Resolver
		dial       proxy.DialFunc
		wantStatus int
		wantReason string // X-Proxy-Error and the log's error field
		dialReason string // upstream_dial_errors_total reason
		minWait    time.Duration
	}{
		{name: "dns failure", target: "gone.origin.test:80", resolver: loopbackResolver(),
			wantStatus: 502, wantReason: "dns", dialReason: "dns"},
		{name: "dns slower than dial_timeout", target: "slow.origin.test:80", resolver: slowResolver(),
			wantStatus: 502, wantReason: "dns", dialReason: "dns", minWait: 350 * time.Millisecond},
		{name: "connection refused", target: "refused.origin.test:" + refusedPort, resolver: loopbackResolver("refused.origin.test"),
			wantStatus: 502, wantReason: "dial", dialReason: "refused"},
		{name: "connect slower than dial_timeout", target: "blackhole.origin.test:80", resolver: loopbackResolver("blackhole.origin.test"),
			dial: hangingDial, wantStatus: 504, wantReason: "dial_timeout", dialReason: "timeout", minWait: 350 * time.Millisecond},
	}
	for _, tc := range cases {
		for _, method := range []string{"GET", "CONNECT"} {
			t.Run(tc.name+"/"+method, func(t *testing.T) {
				reg := prometheus.NewRegistry()
				opts := []proxyOption{withMetrics(reg), withResolver(tc.resolver),
					withConfig(func(c *proxy.Config) { c.DialTimeout = 400 * time.Millisecond })}
				if tc.dial != nil {
					opts = append(opts, withDial(tc.dial))
				}
				p := startProxy(t, opts...)
				before := resourceSnapshot(t)

				c := dial(t, p.addr)
				raw := "CONNECT " + tc.target + " HTTP/1.1\r\nHost: " + tc.target + "\r\n\r\n"
				if method == "GET" {
					raw = "GET http://" + tc.target + "/ HTTP/1.1\r\nHost: " + tc.target + "\r\n\r\n"
				}
				start := time.Now()
				resp, body := exchange(t, c, bufio.NewReader(c), raw, method)
				el := time.Since(start)
				if resp.StatusCode != tc.wantStatus || resp.Header.Get("X-Proxy-Error") != tc.wantReason {
					t.Errorf("got %d X-Proxy-Error=%q (%q), want %d %s", resp.StatusCode, resp.Header.Get("X-Proxy-Error"), body, tc.wantStatus, tc.wantReason)
				}
				if el < tc.minWait || el > 3*time.Second {
					t.Errorf("answered after %s, want between %s and 3s (dial_timeout 400ms)", el, tc.minWait)
				}
				c.Close()

				host, _, _ := strings.Cut(tc.target, ":")
				checkAccessFields(t, p.waitKind(t, "", host, ""), map[string]string{"status": strconv.Itoa(tc.wantStatus), "error": tc.wantReason, "decision": "allow"})
				wantMetric(t, reg, "egressd_upstream_dial_errors_total", map[string]string{"reason": tc.dialReason}, 1)
				wantMetric(t, reg, "egressd_requests_total", map[string]string{"tenant": demoTenant, "decision": "error"}, 1)
				before.check(t)
			})
		}
	}
}

// TestSSRFHookRefuses: a name the policy allows but that resolves to an
// internal address is refused with 403 before any dial; the strict dialer
// fails the test if a single non-loopback address is ever dialed. The
// internal address only ever appears as a fake resolver answer.
func TestSSRFHookRefuses(t *testing.T) {
	answers := map[string][]netip.Addr{
		"inside.origin.test": {netip.MustParseAddr("10.1.2.3")},
		// A public-looking mix is the shape of DNS rebinding: one internal
		// answer refuses the whole name.
		"rebind.origin.test":   {netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("10.1.2.3")},
		"metadata.origin.test": {netip.MustParseAddr("169.254.169.254")},
		"mapped.origin.test":   {netip.MustParseAddr("::ffff:10.1.2.3")},
	}
	resolver := resolverFunc(func(_ context.Context, host string) ([]netip.Addr, error) {
		if a, ok := answers[host]; ok {
			return a, nil
		}
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	})
	var dials atomic.Int32
	reg := prometheus.NewRegistry()
	p := startProxy(t, withMetrics(reg), withResolver(resolver), withDial(strictDial(t, &dials)))
	before := resourceSnapshot(t)

	n := 0
	for _, host := range []string{"inside.origin.test", "rebind.origin.test", "metadata.origin.test", "mapped.origin.test"} {
		for _, method := range []string{"GET", "CONNECT"} {
			t.Run(host+"/"+method, func(t *testing.T) {
				n++
				c := dial(t, p.addr)
				raw := "CONNECT " + host + ":443 HTTP/1.1\r\nHost: " + host + ":443\r\n\r\n"
				if method == "GET" {
					raw = "GET http://" + host + "/latest/meta-data HTTP/1.1\r\nHost: " + host + "\r\n\r\n"
				}
				resp, body := exchange(t, c, bufio.NewReader(c), raw, method)
				c.Close()
				if resp.StatusCode != http.StatusForbidden || resp.Header.Get("X-Proxy-Deny-Reason") != "ssrf" {
					t.Errorf("got %d X-Proxy-Deny-Reason=%q (%q), want 403 ssrf", resp.StatusCode, resp.Header.Get("X-Proxy-Deny-Reason"), body)
				}
				e := p.waitAccess(t, host+" "+method, func(e map[string]any) bool { return e["host"] == host && e["method"] == method })
				checkAccessFields(t, e, map[string]string{"status": "403", "error": "ssrf", "decision": "deny"})
				if e["reason"] != "ssrf" || e["upstream"] != nil {
					t.Errorf("access log reason=%v upstream=%v, want ssrf and no upstream", e["reason"], e["upstream"])
				}
				wantMetric(t, reg, "egressd_denials_total", map[string]string{"tenant": demoTenant, "reason": "ssrf"}, float64(n))
				wantMetric(t, reg, "egressd_upstream_dial_errors_total", map[string]string{"reason": "ssrf"}, float64(n))
			})
		}
	}
	if d := dials.Load(); d != 0 {
		t.Errorf("dialer called %d times, want never", d)
	}
	before.check(t)
}

// TestClientAbortsUpload: a client that goes away in the middle of a
// request body leaves the origin with a short body and a closed leg (never
// a request that looks complete), one access-log line, and nothing held.
func TestClientAbortsUpload(t *testing.T) {
	const declared, sent = 200000, 50000
	for _, abort := range []string{"close", "reset"} {
		t.Run(abort, func(t *testing.T) {
			type got struct {
				n   int64
				err error
			}
			headSeen := make(chan struct{}, 1)
			bodyDone := make(chan got, 1)
			origin := startTCPServer(t, func(c *net.TCPConn) {
				br := bufio.NewReader(c)
				if _, err := readRawHead(br); err != nil {
					return
				}
				headSeen <- struct{}{}
				n, err := io.Copy(io.Discard, br)
				bodyDone <- got{n, err}
			})
			reg := prometheus.NewRegistry()
			p := startProxy(t, withMetrics(reg))
			before := resourceSnapshot(t)

			c := dial(t, p.addr)
			fmt.Fprintf(c, "POST http://%s/upload HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\n\r\n", origin, origin, declared)
			c.Write(randomBytes(t, sent))
			select {
			case <-headSeen:
			case <-time.After(ioTimeout):
				t.Fatal("origin never got the request head")
			}
			if abort == "reset" {
				c.SetLinger(0)
			}
			c.Close()

			select {
			case g := <-bodyDone:
				if g.n >= declared || g.n > sent {
					t.Errorf("origin read %d body bytes, want a short body of at most %d (declared %d)", g.n, sent, declared)
				}
				if g.err != nil && !errors.Is(g.err, net.ErrClosed) && !strings.Contains(g.err.Error(), "reset") {
					t.Errorf("origin read ended with %v, want EOF or reset from the proxy", g.err)
				}
				e := p.waitKind(t, "", "127.0.0.1", "")
				if e["method"] != "POST" || e["bytes_up"] != g.n || e["decision"] != "allow" {
					t.Errorf("access log method=%v bytes_up=%v decision=%v, want POST %d allow", e["method"], e["bytes_up"], e["decision"], g.n)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("upstream leg still open 5s after the client went away")
			}
			if n := len(p.accessEntries()); n != 1 {
				t.Errorf("%d access-log lines, want 1", n)
			}
			before.check(t)
		})
	}
}

// TestTunnelHalfClose: an EOF from either side of a tunnel reaches the
// other side as an EOF (not a close of both directions), the bytes still
// flowing the other way arrive whole, and the tunnel is logged and counted
// once with its byte totals.
func TestTunnelHalfClose(t *testing.T) {
	payload := randomBytes(t, 256<<10)
	banner := "220 server speaks first\r\n"
	type result struct {
		n   int
		sum string
	}
	serverGot := make(chan result, 1)
	cases := []struct {
		name   string
		origin func(*testing.T) string
		// client runs the client side on an established tunnel and
		// returns the bytes it sent and received.
		client func(t *testing.T, c *net.TCPConn, br *bufio.Reader) (up, down int)
	}{
		{
			name:   "client closes write first",
			origin: func(t *testing.T) string { return startEcho(t) },
			client: func(t *testing.T, c *net.TCPConn, br *bufio.Reader) (int, int) {
				go func() {
					c.Write(payload)
					c.CloseWrite()
				}()
				got, err := io.ReadAll(br)
				if err != nil || sum(got) != sum(payload) {
					t.Errorf("echo: %d bytes, %v; want the %d bytes sent, intact", len(got), err, len(payload))
				}
				return len(payload), len(got)
			},
		},
		{
			name: "upstream closes write first",
			origin: func(t *testing.T) string {
				return startTCPServer(t, func(c *net.TCPConn) {
					io.WriteString(c, banner)
					c.CloseWrite()
					b, _ := io.ReadAll(c)
					serverGot <- result{len(b), sum(b)}
				})
			},
			client: func(t *testing.T, c *net.TCPConn, br *bufio.Reader) (int, int) {
				got, err := io.ReadAll(br)
				if err != nil || string(got) != banner {
					t.Errorf("read %q, %v; want the banner then EOF", got, err)
				}
				if _, err := c.Write(payload); err != nil {
					t.Errorf("write after the upstream's EOF: %v", err)
				}
				c.CloseWrite()
				select {
				case r := <-serverGot:
					if r.n != len(payload) || r.sum != sum(payload) {
						t.Errorf("upstream got %d bytes, want the %d sent, intact", r.n, len(payload))
					}
				case <-time.After(ioTimeout):
					t.Error("upstream never got the client's bytes and EOF")
				}
				return len(payload), len(got)
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			origin := tc.origin(t)
			// The SNI check waits for a ClientHello before relaying; off, so
			// a server-speaks-first protocol is relayed at once.
			p := startProxy(t, withMetrics(reg), withACL(func(c *acl.Config) { c.Tenants[0].TLSInspection.SNICheck = "off" }))
			before := resourceSnapshot(t)

			c, br := connectVia(t, p, origin)
			up, down := tc.client(t, c, br)
			c.Close()

			e := p.waitKind(t, "", "127.0.0.1", "")
			if e["kind"] != "connect" || e["status"] != int64(200) || e["bytes_up"] != int64(up) || e["bytes_down"] != int64(down) || e["error"] != nil {
				t.Errorf("access log kind=%v status=%v bytes_up=%v bytes_down=%v error=%v, want connect 200 %d %d no error",
					e["kind"], e["status"], e["bytes_up"], e["bytes_down"], e["error"], up, down)
			}
			wantMetric(t, reg, "egressd_tunnels_total", map[string]string{"tenant": demoTenant}, 1)
			wantMetric(t, reg, "egressd_open_tunnels", map[string]string{"tenant": demoTenant}, 0)
			wantMetric(t, reg, "egressd_transferred_bytes_total", map[string]string{"tenant": demoTenant, "direction": "up"}, float64(up))
			wantMetric(t, reg, "egressd_transferred_bytes_total", map[string]string{"tenant": demoTenant, "direction": "down"}, float64(down))
			before.check(t)
		})
	}
}

// TestSecretsNeverLeave: proxy credentials reach neither the origin nor
// any log line, on success, on a wrong password, on a request refused for
// its framing, or on a tunnel; the user name is what gets logged.
func TestSecretsNeverLeave(t *testing.T) {
	const password, wrong = "Pa55-w0rd-xyz", "wr0ng-Secret-9"
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	origin := answeringOrigin(t, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", true)
	echo := startEcho(t)
	p := startProxy(t, withACL(func(c *acl.Config) {
		c.Tenants[0].RequireAuth = true
		c.Tenants[0].Users = []acl.UserConfig{{Name: "alice", BCrypt: string(hash)}}
	}))
	basic := func(user, pass string) string {
		return "Proxy-Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass)) + "\r\n"
	}
	secrets := []string{password, wrong,
		base64.StdEncoding.EncodeToString([]byte("alice:" + password)),
		base64.StdEncoding.EncodeToString([]byte("alice:" + wrong))}

	cases := []struct {
		name       string
		raw        string
		method     string
		wantStatus int
	}{
		{name: "right password", method: "GET", wantStatus: 200,
			raw: "GET http://" + origin.addr + "/ok HTTP/1.1\r\nHost: " + origin.addr + "\r\n" + basic("alice", password) + "\r\n"},
		{name: "wrong password", method: "GET", wantStatus: 407,
			raw: "GET http://" + origin.addr + "/no HTTP/1.1\r\nHost: " + origin.addr + "\r\n" + basic("alice", wrong) + "\r\n"},
		{name: "refused framing", method: "POST", wantStatus: 400,
			raw: "POST http://" + origin.addr + "/bad HTTP/1.1\r\nHost: " + origin.addr + "\r\n" + basic("alice", password) +
				"Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"},
		{name: "tunnel", method: "CONNECT", wantStatus: 200,
			raw: "CONNECT " + echo + " HTTP/1.1\r\nHost: " + echo + "\r\n" + basic("alice", password) + "\r\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := dial(t, p.addr)
			defer c.Close()
			io.WriteString(c, tc.raw)
			// Only the status: a 200 to CONNECT has no body to read.
			resp, err := http.ReadResponse(bufio.NewReader(c), &http.Request{Method: tc.method})
			if err != nil {
				t.Fatalf("read response: %v", err)
			}
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.wantStatus)
			}
		})
	}
	head := origin.nextHead(t)
	for _, s := range append(secrets, "Proxy-Authorization") {
		if strings.Contains(strings.ToLower(head), strings.ToLower(s)) {
			t.Errorf("origin received %q in the request head:\n%s", s, head)
		}
	}
	waitFor(t, 5*time.Second, "four access-log lines", func() bool { return len(p.accessEntries()) == 4 })
	var users []string
	for _, logs := range []*observer.ObservedLogs{p.access, p.events} {
		for _, e := range logs.All() {
			line := fmt.Sprintf("%s %v", e.Message, e.ContextMap())
			for _, s := range secrets {
				if strings.Contains(line, s) {
					t.Errorf("log line carries a secret (%q): %s", s, line)
				}
			}
			if u, ok := e.ContextMap()["user"]; ok {
				users = append(users, fmt.Sprint(u))
			}
		}
	}
	if len(users) == 0 {
		t.Error("no log line names the user; the user name is meant to be logged, only the password never")
	}
}
