package proxy_test

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	proxyproto "github.com/pires/go-proxyproto"

	"github.com/egressd/egressd/proxy"
)

// assertServes checks that a normal request on a new connection still
// succeeds: a hostile connection must never take the listener down.
func assertServes(t *testing.T, p *testProxy, o *rawOrigin, linkID uint32) {
	t.Helper()
	status, body := getVia(t, p, "http://"+o.addr+"/ok", linkID)
	if status != 200 || string(body) != "ok" {
		t.Fatalf("normal request afterwards: %d %q, want 200 \"ok\"", status, body)
	}
}

// assertNeverForwarded fails if any request for path reached o.
func assertNeverForwarded(t *testing.T, o *rawOrigin, path string) {
	t.Helper()
	for {
		select {
		case h := <-o.heads:
			if strings.Contains(strings.SplitN(h, "\r\n", 2)[0], path) {
				t.Fatalf("a refused request reached the origin:\n%s", h)
			}
		default:
			return
		}
	}
}

// v2Prefix is a v2 header start: signature, PROXY command, TCP over IPv4,
// and a length. Callers append (or withhold) the address block.
func v2Prefix(length uint16) []byte {
	b := append([]byte(nil), proxyproto.SIGV2...)
	b = append(b, 0x21, 0x11)
	return binary.BigEndian.AppendUint16(b, length)
}

func headerBytes(t *testing.T, h *proxyproto.Header) []byte {
	t.Helper()
	b, err := h.Format()
	if err != nil {
		t.Fatalf("format header: %v", err)
	}
	return b
}

func TestPROXYHeaderRefusals(t *testing.T) {
	t.Parallel()
	o := okOrigin(t)
	p := startProxy(t, withConfig(requiredPP))
	valid := headerBytes(t, ppv2Header(t, "10.2.0.7:40000", "10.2.128.100:3128", demoLinkID))
	badTLV := ppv2Header(t, "10.2.0.7:40000", "10.2.128.100:3128", 0)
	badTLV.SetTLVs([]proxyproto.TLV{{Type: 0xEE, Value: []byte{0x01, 0xE9, 0x03}}}) // LinkID cut to 2 bytes
	request := "GET http://" + o.addr + "/refused HTTP/1.1\r\nHost: " + o.addr + "\r\n\r\n"

	tests := []struct {
		name      string
		send      []byte
		halfClose bool   // the client stops sending (EOF) after send
		outcome   string // the proxy's debug log reason
		minWait   time.Duration
	}{
		{name: "no header, plain HTTP", send: []byte(request), outcome: "missing"},
		{name: "no header, client closes at once", send: nil, halfClose: true, outcome: "missing"},
		{name: "v2 with an unknown version nibble", send: append(append(proxyproto.SIGV2[:12:12], 0x31, 0x11, 0, 12), valid[16:]...), outcome: "malformed"},
		{name: "v2 with an unknown command", send: append(append(proxyproto.SIGV2[:12:12], 0x2F, 0x11, 0, 12), valid[16:]...), outcome: "malformed"},
		{name: "v2 address block shorter than its family needs", send: append(v2Prefix(4), 10, 2, 0, 7), outcome: "malformed"},
		{name: "v2 truncated, then EOF", send: valid[:20], halfClose: true, outcome: "malformed"},
		{name: "v2 truncated, then silence", send: valid[:20], outcome: "timeout", minWait: 250 * time.Millisecond},
		{name: "slow header: half a signature, then silence", send: proxyproto.SIGV2[:6], outcome: "timeout", minWait: 250 * time.Millisecond},
		{name: "silent peer", send: nil, outcome: "timeout", minWait: 250 * time.Millisecond},
		{name: "Azure LinkID TLV of the wrong length", send: headerBytes(t, badTLV), outcome: "malformed"},
		{name: "garbage instead of a header", send: bytes.Repeat([]byte{0x0d, 0x0a, 0x00, 0xff}, 64), outcome: "malformed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := dial(t, p.addr)
			start := time.Now()
			if len(tc.send) > 0 {
				if _, err := c.Write(tc.send); err != nil {
					t.Fatalf("write: %v", err)
				}
			}
			if tc.halfClose {
				c.CloseWrite()
			} else if tc.outcome != "timeout" {
				// Follow with a request: nothing of it may be answered.
				io.WriteString(c, request)
			}
			expectClosed(t, c, 3*time.Second)
			if el := time.Since(start); el < tc.minWait {
				t.Errorf("closed after %s, want the header timeout (300ms) to run first", el)
			}
			waitFor(t, 3*time.Second, "debug log for outcome "+tc.outcome, func() bool {
				for _, e := range p.events.FilterMessage("connection refused at PROXY header").All() {
					if e.ContextMap()["outcome"] == tc.outcome {
						return true
					}
				}
				return false
			})
			assertServes(t, p, o, demoLinkID)
		})
	}
	assertNeverForwarded(t, o, "/refused")
	// The line is written just after the response, so wait for the last one.
	waitFor(t, 3*time.Second, "one access log line per normal request", func() bool { return len(p.accessEntries()) >= len(tests) })
	time.Sleep(50 * time.Millisecond)
	if n := len(p.accessEntries()); n != len(tests) {
		t.Errorf("%d access log lines, want %d (one per normal request; refused connections are not requests)", n, len(tests))
	}
}

// TestUntrustedPeer: a PROXY header is only believed from trusted_proxies.
// The trusted range is a config value only; no traffic goes to 10/8.
func TestUntrustedPeer(t *testing.T) {
	t.Parallel()
	o := okOrigin(t)
	tests := []struct {
		name       string
		mode       proxy.ProxyProtocol
		sendHeader bool
		wantStatus int // 0: closed without a response
	}{
		{name: "required, header from an untrusted peer", mode: proxy.PPRequired, sendHeader: true},
		{name: "required, no header from an untrusted peer", mode: proxy.PPRequired, sendHeader: false},
		{name: "optional, header from an untrusted peer", mode: proxy.PPOptional, sendHeader: true},
		{name: "optional, no header: the socket is the identity", mode: proxy.PPOptional, sendHeader: false, wantStatus: 200},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := startProxy(t, withConfig(func(c *proxy.Config) {
				c.ProxyProtocol = tc.mode
				c.TrustedProxies = []string{"10.0.0.0/8"}
			}))
			var c *net.TCPConn
			if tc.sendHeader {
				c = dialPP(t, p.addr, demoLinkID)
			} else {
				c = dial(t, p.addr)
			}
			req := "GET http://" + o.addr + "/ok HTTP/1.1\r\nHost: " + o.addr + "\r\n\r\n"
			if tc.wantStatus == 0 {
				io.WriteString(c, req)
				expectClosed(t, c, 3*time.Second)
				if n := len(p.accessEntries()); n != 0 {
					t.Errorf("%d access log lines for a refused connection, want 0", n)
				}
				return
			}
			resp, body := exchange(t, c, bufio.NewReader(c), req, "GET")
			if resp.StatusCode != tc.wantStatus || string(body) != "ok" {
				t.Fatalf("%d %q, want %d ok", resp.StatusCode, body, tc.wantStatus)
			}
		})
	}
}

// TestPROXYv1HeaderIsAccepted: the issue asks for v1 and v2 on the proxy
// port. A v1 header carries no TLVs, so the caller is identified by the
// header's source address alone.
func TestPROXYv1HeaderIsAccepted(t *testing.T) {
	t.Parallel()
	o := okOrigin(t)
	p := startProxy(t, withConfig(requiredPP))
	tests := []struct {
		name   string
		header string
		status int
		tenant string
	}{
		{name: "source inside the tenant's source_cidrs", header: "PROXY TCP4 127.0.0.9 127.0.0.1 5555 3128\r\n", status: 200, tenant: demoTenant},
		{name: "source no tenant claims", header: "PROXY TCP4 192.0.2.9 127.0.0.1 5555 3128\r\n", status: 403, tenant: "unknown"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := dial(t, p.addr)
			resp, _ := exchange(t, c, bufio.NewReader(c), tc.header+"GET http://"+o.addr+"/v1 HTTP/1.1\r\nHost: "+o.addr+"\r\n\r\n", "GET")
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.status)
			}
			src := strings.Fields(tc.header)[2] + ":5555"
			e := p.waitAccess(t, tc.name, func(e map[string]any) bool { return e["client"] == src })
			if e["tenant"] != tc.tenant || e["status"] != int64(tc.status) {
				t.Errorf("tenant=%v status=%v, want %s %d", e["tenant"], e["status"], tc.tenant, tc.status)
			}
			if _, ok := e["link_id"]; ok {
				t.Errorf("link_id %v logged for a v1 header", e["link_id"])
			}
		})
	}
}

// TestSmuggling sends requests whose framing two parsers could read
// differently (RFC 9112 §6, §11.2): each must be refused with the exact
// status and a close, and never reach the origin.
func TestSmuggling(t *testing.T) {
	t.Parallel()
	o := okOrigin(t)
	p := startProxy(t, withConfig(requiredPP))
	target := "http://" + o.addr + "/smuggled"
	host := "Host: " + o.addr + "\r\n"
	tests := []struct {
		name   string
		raw    string
		status int
		reason string
	}{
		{name: "Content-Length with Transfer-Encoding", raw: "POST " + target + " HTTP/1.1\r\n" + host + "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", status: 400, reason: "ambiguous_framing"},
		{name: "Transfer-Encoding with Content-Length", raw: "POST " + target + " HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n", status: 400, reason: "ambiguous_framing"},
		{name: "two different Content-Length fields", raw: "POST " + target + " HTTP/1.1\r\n" + host + "Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", status: 400, reason: "ambiguous_framing"},
		{name: "Content-Length list with different values", raw: "POST " + target + " HTTP/1.1\r\n" + host + "Content-Length: 5, 6\r\n\r\nhello!", status: 400, reason: "ambiguous_framing"},
		{name: "signed Content-Length", raw: "POST " + target + " HTTP/1.1\r\n" + host + "Content-Length: +5\r\n\r\nhello", status: 400, reason: "ambiguous_framing"},
		{name: "negative Content-Length", raw: "POST " + target + " HTTP/1.1\r\n" + host + "Content-Length: -1\r\n\r\n", status: 400, reason: "ambiguous_framing"},
		{name: "overflowing Content-Length", raw: "POST " + target + " HTTP/1.1\r\n" + host + "Content-Length: 99999999999999999999\r\n\r\n", status: 400, reason: "ambiguous_framing"},
		{name: "Transfer-Encoding: xchunked", raw: "POST " + target + " HTTP/1.1\r\n" + host + "Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n", status: 400, reason: "ambiguous_framing"},
		{name: "Transfer-Encoding: chunked, identity", raw: "POST " + target + " HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n", status: 400, reason: "ambiguous_framing"},
		{name: "Transfer-Encoding with a quoted token", raw: "POST " + target + " HTTP/1.1\r\n" + host + "Transfer-Encoding: \"chunked\"\r\n\r\n0\r\n\r\n", status: 400, reason: "ambiguous_framing"},
		{name: "Transfer-Encoding: identity, chunked", raw: "POST " + target + " HTTP/1.1\r\n" + host + "Transfer-Encoding: identity, chunked\r\n\r\n0\r\n\r\n", status: 501, reason: "unsupported_transfer_encoding"},
		{name: "Transfer-Encoding twice", raw: "POST " + target + " HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", status: 501, reason: "unsupported_transfer_encoding"},
		{name: "Transfer-Encoding in HTTP/1.0", raw: "POST " + target + " HTTP/1.0\r\n" + host + "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", status: 400, reason: "ambiguous_framing"},
		{name: "overflowing chunk size", raw: "POST " + target + " HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked\r\n\r\n10000000000000005\r\nhello\r\n0\r\n\r\n", status: 400, reason: "ambiguous_framing"},
		{name: "negative chunk size", raw: "POST " + target + " HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked\r\n\r\n-5\r\nhello\r\n0\r\n\r\n", status: 400, reason: "ambiguous_framing"},
		{name: "chunk data longer than its size", raw: "POST " + target + " HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked\r\n\r\n3\r\nhello\r\n0\r\n\r\n", status: 400, reason: "ambiguous_framing"},
		{name: "chunk size ended by a bare LF", raw: "POST " + target + " HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked\r\n\r\n5\nhello\r\n0\r\n\r\n", status: 400, reason: "ambiguous_framing"},
		{name: "chunk size with trailing junk", raw: "POST " + target + " HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked\r\n\r\n5x\r\nhello\r\n0\r\n\r\n", status: 400, reason: "ambiguous_framing"},
		{name: "chunk extension with a bare CR", raw: "POST " + target + " HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked\r\n\r\n5;a\rb\r\nhello\r\n0\r\n\r\n", status: 400, reason: "ambiguous_framing"},
		{name: "obs-fold line", raw: "GET " + target + " HTTP/1.1\r\n" + host + "X-Folded: a\r\n b\r\n\r\n", status: 400, reason: "malformed_request"},
		{name: "folded Transfer-Encoding", raw: "POST " + target + " HTTP/1.1\r\n" + host + "Transfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n", status: 400, reason: "malformed_request"},
		{name: "space before colon", raw: "POST " + target + " HTTP/1.1\r\n" + host + "Transfer-Encoding : chunked\r\n\r\n0\r\n\r\n", status: 400, reason: "malformed_request"},
		{name: "bare CR in a field value", raw: "GET " + target + " HTTP/1.1\r\n" + host + "X-A: a\rX-B: b\r\n\r\n", status: 400, reason: "malformed_request"},
		{name: "NUL in a field value", raw: "GET " + target + " HTTP/1.1\r\n" + host + "X-A: a\x00b\r\n\r\n", status: 400, reason: "malformed_request"},
		{name: "NUL in the request line", raw: "GET " + target + "\x00 HTTP/1.1\r\n" + host + "\r\n", status: 400, reason: "malformed_request"},
		{name: "two Host fields", raw: "GET " + target + " HTTP/1.1\r\n" + host + "Host: other.example\r\n\r\n", status: 400, reason: "malformed_request"},
		{name: "HTTP/1.1 without Host", raw: "GET " + target + " HTTP/1.1\r\n\r\n", status: 400, reason: "malformed_request"},
		{name: "userinfo in the target", raw: "GET http://user@" + o.addr + "/smuggled HTTP/1.1\r\n" + host + "\r\n", status: 400, reason: "malformed_request"},
		{name: "CONNECT with a body", raw: "CONNECT " + o.addr + " HTTP/1.1\r\n" + host + "Content-Length: 5\r\n\r\nhello", status: 400, reason: "malformed_request"},
		{name: "HTTP/2.0 request line", raw: "GET " + target + " HTTP/2.0\r\n" + host + "\r\n", status: 505, reason: "http_version"},
		{name: "unknown expectation", raw: "GET " + target + " HTTP/1.1\r\n" + host + "Expect: 200-ok\r\n\r\n", status: 417, reason: "expectation"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := dialPP(t, p.addr, demoLinkID)
			br := bufio.NewReader(c)
			resp, body := exchange(t, c, br, tc.raw, "GET")
			if resp.StatusCode != tc.status || resp.Header.Get("X-Proxy-Error") != tc.reason {
				t.Fatalf("%d %s (%q), want %d %s", resp.StatusCode, resp.Header.Get("X-Proxy-Error"), body, tc.status, tc.reason)
			}
			if !resp.Close {
				t.Errorf("response does not announce Connection: close")
			}
			expectEOF(t, c, br)
			reqID := resp.Header.Get("X-Request-Id")
			e := p.waitAccess(t, tc.name, func(e map[string]any) bool { return e["request_id"] == reqID })
			if e["status"] != int64(tc.status) || e["error"] != tc.reason || e["link_id"] != uint32(demoLinkID) {
				t.Errorf("access log status=%v error=%v link_id=%v, want %d %s %d", e["status"], e["error"], e["link_id"], tc.status, tc.reason, demoLinkID)
			}
			assertServes(t, p, o, demoLinkID)
		})
	}
	assertNeverForwarded(t, o, "/smuggled")
}

// TestOversizedHead: a head beyond max_header_bytes gets 431 and a close,
// without the proxy reading (or buffering) the rest of it.
func TestOversizedHead(t *testing.T) {
	t.Parallel()
	o := okOrigin(t)
	p := startProxy(t, withConfig(requiredPP))
	host := "Host: " + o.addr + "\r\n"
	tests := []struct {
		name string
		head string
	}{
		{name: "one 1 MiB field", head: "GET http://" + o.addr + "/big HTTP/1.1\r\n" + host + "X-Big: " + strings.Repeat("a", 1<<20) + "\r\n\r\n"},
		{name: "1 MiB of small fields", head: "GET http://" + o.addr + "/big HTTP/1.1\r\n" + host + strings.Repeat("X-Small: 0123456789abcdef\r\n", (1<<20)/27) + "\r\n"},
		{name: "1 MiB request line", head: "GET http://" + o.addr + "/" + strings.Repeat("p", 1<<20) + " HTTP/1.1\r\n" + host + "\r\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := dialPP(t, p.addr, demoLinkID)
			// Write from another goroutine: the proxy answers (and closes)
			// long before the client has sent everything.
			go func() { io.WriteString(c, tc.head) }()
			br := bufio.NewReader(c)
			resp, err := http.ReadResponse(br, &http.Request{Method: "GET"})
			if err != nil {
				t.Fatalf("read response: %v", err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge || resp.Header.Get("X-Proxy-Error") != "header_too_large" {
				t.Fatalf("%d %s, want 431 header_too_large", resp.StatusCode, resp.Header.Get("X-Proxy-Error"))
			}
			assertServes(t, p, o, demoLinkID)
		})
	}
	assertNeverForwarded(t, o, "/big")
}

// TestGarbage feeds seeded random bytes after a valid header: the answer
// is an error status or a close, never a forwarded request, and the
// server keeps serving.
func TestGarbage(t *testing.T) {
	t.Parallel()
	o := okOrigin(t)
	p := startProxy(t, withConfig(requiredPP))
	for seed := range uint64(8) {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 2))
			junk := make([]byte, 4096)
			for i := range junk {
				junk[i] = byte(rng.Uint32())
			}
			if seed%2 == 1 {
				// Half the cases look like a request until the junk starts.
				junk = append([]byte("GET http://"+o.addr+"/junk HTTP/1.1\r\nX-"), junk...)
			}
			c := dialPP(t, p.addr, demoLinkID)
			go func() { c.Write(junk) }()
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			got, err := io.ReadAll(c)
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatalf("connection still open 5s after garbage")
			}
			if len(got) > 0 {
				resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(got)), nil)
				if err != nil {
					t.Fatalf("answer is not an HTTP response: %q", truncate(got))
				}
				if resp.StatusCode < 400 {
					t.Fatalf("garbage got status %d", resp.StatusCode)
				}
			}
			assertServes(t, p, o, demoLinkID)
		})
	}
	assertNeverForwarded(t, o, "/junk")
}

// TestLoadBalancerProbes: Azure's health probes send a LOCAL (or
// address-less) v2 header. They get a fast answer, and never count as
// tenant traffic: no access log line.
func TestLoadBalancerProbes(t *testing.T) {
	t.Parallel()
	p := startProxy(t, withConfig(requiredPP))
	local := headerBytes(t, &proxyproto.Header{Version: 2, Command: proxyproto.LOCAL, TransportProtocol: proxyproto.UNSPEC})
	tests := []struct {
		name     string
		header   []byte
		request  string // "" is a TCP probe: connect, header, close
		response string // the exact reply
	}{
		{name: "LOCAL then GET /", header: local, request: "GET / HTTP/1.1\r\nHost: 10.2.128.100\r\n\r\n",
			response: "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"},
		{name: "LOCAL then close", header: local},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := dial(t, p.addr)
			c.Write(append(tc.header, tc.request...))
			if tc.request == "" {
				c.CloseWrite()
			}
			c.SetReadDeadline(time.Now().Add(3 * time.Second))
			got, err := io.ReadAll(c)
			if err != nil {
				t.Fatalf("read: %v (got %q)", err, got)
			}
			if string(got) != tc.response {
				t.Fatalf("reply %q, want %q and a close", got, tc.response)
			}
		})
	}
	waitFor(t, 3*time.Second, "probe connections to finish", func() bool { return p.srv.OpenConnections() == 0 })
	if n := len(p.accessEntries()); n != 0 {
		t.Errorf("%d access log lines for probes, want 0: %v", n, p.accessEntries())
	}
}

// An address-less v2 header (PROXY command, AF_UNSPEC) is what CONTEXT.md
// says Azure LB probes may send: it gets the probe answer, not a refusal.
func TestAddressLessProbe(t *testing.T) {
	p := startProxy(t, withConfig(requiredPP))
	h := headerBytes(t, &proxyproto.Header{Version: 2, Command: proxyproto.PROXY, TransportProtocol: proxyproto.UNSPEC})
	c := dial(t, p.addr)
	c.Write(append(h, "GET / HTTP/1.1\r\nHost: 10.2.128.100\r\n\r\n"...))
	c.SetReadDeadline(time.Now().Add(3 * time.Second))
	got, _ := io.ReadAll(c)
	want := "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
	if string(got) != want {
		for _, e := range p.events.All() {
			t.Logf("event: %s %v", e.Message, e.ContextMap())
		}
		t.Fatalf("reply %q, want %q", got, want)
	}
}

// TestSlowClients: a peer that trickles a request head, or idles on a
// keep-alive connection, is closed after the configured timeout instead of
// holding a goroutine and a descriptor forever.
func TestSlowClients(t *testing.T) {
	t.Parallel()
	o := okOrigin(t)
	p := startProxy(t, withConfig(func(c *proxy.Config) {
		requiredPP(c)
		c.ReadHeaderTimeout = 300 * time.Millisecond
		c.ClientIdleTimeout = 300 * time.Millisecond
	}))
	tests := []struct {
		name string
		send string // after the PROXY header; a complete request is answered first
	}{
		{name: "request head never finished", send: "GET http://" + o.addr + "/ok HTTP/1.1\r\nHost: " + o.addr + "\r\nX-Slow:"},
		{name: "idle keep-alive connection", send: ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := dialPP(t, p.addr, demoLinkID)
			br := bufio.NewReader(c)
			if tc.send == "" {
				resp, _ := exchange(t, c, br, "GET http://"+o.addr+"/ok HTTP/1.1\r\nHost: "+o.addr+"\r\n\r\n", "GET")
				if resp.StatusCode != 200 || resp.Close {
					t.Fatalf("first request: %d close=%v", resp.StatusCode, resp.Close)
				}
			} else {
				io.WriteString(c, tc.send)
			}
			start := time.Now()
			expectClosed(t, c, 3*time.Second)
			if el := time.Since(start); el < 250*time.Millisecond {
				t.Errorf("closed after %s, before the 300ms timeout", el)
			}
		})
	}
	assertServes(t, p, o, demoLinkID)
}

// TestInvalidChunkMidBodyAbortsBothSides: a chunk error that arrives after
// the request went upstream cannot be taken back, so the upstream
// connection is cut mid-body (its request never completes) and the client
// gets 400 and a close.
func TestInvalidChunkMidBodyAbortsBothSides(t *testing.T) {
	t.Parallel()
	gotEOF := make(chan []byte, 1)
	o := startRawOrigin(t, func(c net.Conn, br *bufio.Reader, _ string) bool {
		b, _ := io.ReadAll(br) // until the proxy cuts the connection
		gotEOF <- b
		return false
	})
	p := startProxy(t, withConfig(requiredPP))
	c := dialPP(t, p.addr, demoLinkID)
	br := bufio.NewReader(c)
	io.WriteString(c, "POST http://"+o.addr+"/upload HTTP/1.1\r\nHost: "+o.addr+"\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")
	o.nextHead(t)
	io.WriteString(c, "5\r\nworldEXTRA\r\n0\r\n\r\n")
	resp, _ := readResponse(t, br, "POST")
	if resp.StatusCode != 400 || resp.Header.Get("X-Proxy-Error") != "ambiguous_framing" || !resp.Close {
		t.Fatalf("%d %s close=%v, want 400 ambiguous_framing with a close", resp.StatusCode, resp.Header.Get("X-Proxy-Error"), resp.Close)
	}
	expectEOF(t, c, br)
	select {
	case b := <-gotEOF:
		if bytes.Contains(b, []byte("0\r\n\r\n")) {
			t.Errorf("the upstream got a complete body %q; it must be cut before the last chunk", b)
		}
	case <-time.After(ioTimeout):
		t.Fatal("the upstream connection was not closed")
	}
	e := p.waitAccess(t, "aborted upload", func(e map[string]any) bool { return e["request_id"] == resp.Header.Get("X-Request-Id") })
	if e["error"] != "ambiguous_framing" {
		t.Errorf("access log error=%v, want ambiguous_framing", e["error"])
	}
	assertServes(t, p, okOrigin(t), demoLinkID)
}
