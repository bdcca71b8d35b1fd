package proxy_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	proxyproto "github.com/pires/go-proxyproto"

	"github.com/egressd/egressd/proxy"
)

// blobOrigin serves body at any path over plain HTTP and over TLS, and
// answers a POST with the sha256 and length of what it received.
type blobOrigin struct {
	plain, tls *httptest.Server
	certFile   string
	body       []byte
}

func startBlobOrigin(t *testing.T, size int) *blobOrigin {
	t.Helper()
	o := &blobOrigin{body: randomBytes(t, size)}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			b, err := io.ReadAll(r.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			fmt.Fprintf(w, "%s %d", sum(b), len(b))
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Write(o.body)
	})
	o.plain = httptest.NewServer(h)
	t.Cleanup(o.plain.Close)
	o.tls = httptest.NewTLSServer(h)
	t.Cleanup(o.tls.Close)
	o.certFile = filepath.Join(t.TempDir(), "origin.pem")
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: o.tls.Certificate().Raw})
	if err := os.WriteFile(o.certFile, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	return o
}

func TestCurlThroughProxy(t *testing.T) {
	t.Parallel()
	const size = 1 << 20
	o := startBlobOrigin(t, size)
	p := startProxy(t, withResolver(loopbackResolver("example.com")))
	proxyURL := "http://" + p.addr
	upload := filepath.Join(t.TempDir(), "upload.bin")
	uploadBody := randomBytes(t, size)
	if err := os.WriteFile(upload, uploadBody, 0o600); err != nil {
		t.Fatal(err)
	}
	tlsPort := portOf(t, o.tls.Listener.Addr().String())

	tests := []struct {
		name     string
		args     []string
		want     []byte
		kind     string // access log kind
		host     string // access log host
		downMin  int64  // access log bytes_down at least
		exactURL string // access log url for plain http
	}{
		{
			name:     "http origin",
			args:     []string{"-x", proxyURL, o.plain.URL + "/blob"},
			want:     o.body,
			kind:     "http",
			host:     "127.0.0.1",
			downMin:  size,
			exactURL: o.plain.URL + "/blob",
		},
		{
			name:     "http upload",
			args:     []string{"-x", proxyURL, "--data-binary", "@" + upload, o.plain.URL + "/upload"},
			want:     []byte(fmt.Sprintf("%s %d", sum(uploadBody), size)),
			kind:     "http",
			host:     "127.0.0.1",
			exactURL: o.plain.URL + "/upload",
		},
		{
			name:    "https origin by IP through CONNECT",
			args:    []string{"-x", proxyURL, "--cacert", o.certFile, o.tls.URL + "/blob"},
			want:    o.body,
			kind:    "connect",
			host:    "127.0.0.1",
			downMin: size, // the TLS records are larger than the body
		},
		{
			// The proxy resolves example.com with the test resolver;
			// --resolve only guarantees curl itself never asks DNS.
			name: "https origin by name through CONNECT",
			args: []string{"-x", proxyURL, "--cacert", o.certFile,
				"--resolve", "example.com:" + tlsPort + ":127.0.0.1", "https://example.com:" + tlsPort + "/blob"},
			want:    o.body,
			kind:    "connect",
			host:    "example.com",
			downMin: size,
		},
		{
			// curl's --haproxy-protocol is a real PROXY v1 sender.
			name:     "http origin with a PROXY v1 header from curl",
			args:     []string{"-x", proxyURL, "--haproxy-protocol", o.plain.URL + "/v1"},
			want:     o.body,
			kind:     "http",
			host:     "127.0.0.1",
			downMin:  size,
			exactURL: o.plain.URL + "/v1",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, stderr, err := curl(t, append([]string{"--fail"}, tc.args...)...)
			if err != nil {
				t.Fatalf("curl %s: %v\n%s", strings.Join(tc.args, " "), err, stderr)
			}
			got := []byte(out)
			if sum(got) != sum(tc.want) || len(got) != len(tc.want) {
				t.Fatalf("body: got %d bytes sha256 %s, want %d bytes sha256 %s", len(got), sum(got), len(tc.want), sum(tc.want))
			}
			e := p.waitAccess(t, tc.name, func(e map[string]any) bool {
				if tc.exactURL != "" {
					return e["url"] == tc.exactURL
				}
				return e["kind"] == "connect" && e["host"] == tc.host
			})
			if e["tenant"] != demoTenant || e["decision"] != "allow" || e["status"] != int64(200) || e["kind"] != tc.kind {
				t.Errorf("access log: tenant=%v decision=%v status=%v kind=%v, want %s allow 200 %s",
					e["tenant"], e["decision"], e["status"], e["kind"], demoTenant, tc.kind)
			}
			if _, ok := e["link_id"]; ok {
				t.Errorf("access log has link_id %v for a connection without a LinkID", e["link_id"])
			}
			if down, _ := e["bytes_down"].(int64); down < tc.downMin {
				t.Errorf("access log bytes_down = %d, want at least %d", down, tc.downMin)
			}
		})
	}
}

// ppTransport is an http.Transport whose every connection to the proxy
// starts with a PROXY v2 header carrying linkID, as Azure's PLS sends it.
func ppTransport(t *testing.T, p *testProxy, linkID uint32, roots *x509.CertPool) *http.Transport {
	t.Helper()
	proxyURL, _ := url.Parse("http://" + p.addr)
	tr := &http.Transport{
		Proxy: http.ProxyURL(proxyURL),
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			var d net.Dialer
			c, err := d.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			if _, err := ppv2Header(t, "10.2.0.7:40000", "10.2.128.100:3128", linkID).WriteTo(c); err != nil {
				c.Close()
				return nil, err
			}
			return c, nil
		},
		TLSClientConfig:    &tls.Config{RootCAs: roots},
		DisableCompression: true,
	}
	t.Cleanup(tr.CloseIdleConnections)
	return tr
}

func TestPROXYv2LinkIDIsServedAndLogged(t *testing.T) {
	t.Parallel()
	o := startBlobOrigin(t, 1<<20)
	p := startProxy(t, withConfig(requiredPP))
	roots := x509.NewCertPool()
	roots.AddCert(o.tls.Certificate())

	tests := []struct {
		name   string
		linkID uint32
		url    string
		kind   string
		status int
		tenant string
		dec    string
	}{
		{name: "http with LinkID", linkID: demoLinkID, url: o.plain.URL + "/pp-http", kind: "http", status: 200, tenant: demoTenant, dec: "allow"},
		{name: "https with LinkID", linkID: demoLinkID, url: o.tls.URL + "/pp-https", kind: "connect", status: 200, tenant: demoTenant, dec: "allow"},
		// A LinkID nobody configured must not fall back to the loopback
		// source_cidrs: behind a private endpoint an address proves nothing.
		{name: "unknown LinkID", linkID: 4242, url: o.plain.URL + "/pp-unknown", kind: "http", status: 403, tenant: "unknown", dec: "deny"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tr := ppTransport(t, p, tc.linkID, roots)
			resp, err := (&http.Client{Transport: tr, Timeout: 20 * time.Second}).Get(tc.url)
			if err != nil {
				if tc.status == 200 || tc.kind == "http" {
					t.Fatalf("GET %s: %v", tc.url, err)
				}
			} else {
				body, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil {
					t.Fatalf("read body: %v", err)
				}
				if resp.StatusCode != tc.status {
					t.Fatalf("status %d (%s), want %d", resp.StatusCode, body, tc.status)
				}
				if tc.status == 200 && !bytes.Equal(body, o.body) {
					t.Fatalf("body: got %d bytes sha256 %s, want sha256 %s", len(body), sum(body), sum(o.body))
				}
			}
			// A tunnel is logged when it closes.
			tr.CloseIdleConnections()
			e := p.waitAccess(t, tc.name, func(e map[string]any) bool {
				if tc.kind == "http" {
					return e["url"] == tc.url
				}
				return e["kind"] == "connect" && e["link_id"] == uint32(tc.linkID)
			})
			if e["link_id"] != uint32(tc.linkID) {
				t.Errorf("link_id = %v (%T), want %d", e["link_id"], e["link_id"], tc.linkID)
			}
			if e["tenant"] != tc.tenant || e["decision"] != tc.dec || e["status"] != int64(tc.status) {
				t.Errorf("tenant=%v decision=%v status=%v, want %s %s %d", e["tenant"], e["decision"], e["status"], tc.tenant, tc.dec, tc.status)
			}
			if e["client"] != "10.2.0.7:40000" {
				t.Errorf("client = %v, want the PROXY header's source 10.2.0.7:40000", e["client"])
			}
			if lb, _ := e["lb"].(string); !strings.HasPrefix(lb, "127.0.0.1:") {
				t.Errorf("lb = %q, want the socket peer 127.0.0.1:port", lb)
			}
			if tc.status == 200 {
				if down, _ := e["bytes_down"].(int64); down < int64(len(o.body)) {
					t.Errorf("bytes_down = %d, want at least %d", down, len(o.body))
				}
			}
		})
	}
}

// TestHopByHopHeadersRemoved checks RFC 9110 §7.6.1 in both directions:
// fields that describe one connection never cross the proxy, Via is
// added, and Host comes from the absolute URI.
func TestHopByHopHeadersRemoved(t *testing.T) {
	t.Parallel()
	o := startRawOrigin(t, func(c net.Conn, _ *bufio.Reader, _ string) bool {
		io.WriteString(c, "HTTP/1.1 200 OK\r\n"+
			"Connection: X-Hop-Resp\r\n"+
			"X-Hop-Resp: secret\r\n"+
			"Keep-Alive: timeout=5\r\n"+
			"Proxy-Authenticate: Basic realm=\"origin\"\r\n"+
			"Proxy-Connection: keep-alive\r\n"+
			"Trailer: X-Trailer\r\n"+
			"Upgrade: h2c\r\n"+
			"TE: trailers\r\n"+
			"X-End-To-End: kept\r\n"+
			"Content-Length: 2\r\n\r\nok")
		return true
	})
	p := startProxy(t)
	c := dial(t, p.addr)
	br := bufio.NewReader(c)
	io.WriteString(c, "GET http://"+o.addr+"/path?q=1 HTTP/1.1\r\n"+
		"Host: ignored.example\r\n"+
		"Connection: keep-alive, X-Hop-Req\r\n"+
		"X-Hop-Req: secret\r\n"+
		"Proxy-Connection: keep-alive\r\n"+
		"Keep-Alive: timeout=5\r\n"+
		"Proxy-Authorization: Basic Zm9vOmJhcg==\r\n"+
		"TE: trailers\r\n"+
		"Trailer: X-Trailer\r\n"+
		"Upgrade: websocket\r\n"+
		"X-End-To-End: kept\r\n\r\n")

	up := o.nextHead(t)
	if line := strings.SplitN(up, "\r\n", 2)[0]; line != "GET /path?q=1 HTTP/1.1" {
		t.Errorf("upstream request line %q, want origin-form %q", line, "GET /path?q=1 HTTP/1.1")
	}
	resp, err := readRawHead(br)
	if err != nil {
		t.Fatalf("read response head: %v", err)
	}
	body := make([]byte, 2)
	if _, err := io.ReadFull(br, body); err != nil || string(body) != "ok" {
		t.Fatalf("response body %q, %v; want ok", body, err)
	}
	hop := []string{"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authorization", "Proxy-Authenticate", "TE", "Trailer", "Upgrade"}
	tests := []struct {
		name   string
		head   string
		listed string // the field the sender named in Connection
		want   map[string][]string
	}{
		{name: "request", head: up, listed: "X-Hop-Req", want: map[string][]string{
			"Host":         {o.addr},
			"Via":          {"1.1 egressd"},
			"X-End-To-End": {"kept"},
		}},
		{name: "response", head: resp, listed: "X-Hop-Resp", want: map[string][]string{
			"Via":            {"1.1 egressd"},
			"X-End-To-End":   {"kept"},
			"Content-Length": {"2"},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, name := range append(hop, tc.listed) {
				if v := fieldValues(tc.head, name); len(v) > 0 {
					t.Errorf("hop-by-hop %s: %q forwarded; head:\n%s", name, v, tc.head)
				}
			}
			for name, want := range tc.want {
				if got := fieldValues(tc.head, name); strings.Join(got, "|") != strings.Join(want, "|") {
					t.Errorf("%s = %q, want %q", name, got, want)
				}
			}
		})
	}
}

// TestMessageFraming sends requests whose bodies and responses use every
// framing the proxy must stream, each followed by a second request on the
// same client connection: if the proxy got any framing wrong, the second
// response would be garbage.
func TestMessageFraming(t *testing.T) {
	t.Parallel()
	httpOrigin := startHTTPOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/echo":
			b, _ := io.ReadAll(r.Body)
			fmt.Fprintf(w, "te=%s body=%s", strings.Join(r.TransferEncoding, ","), b)
		case "/chunked":
			for _, part := range []string{"alpha,", "beta,", "gamma"} {
				io.WriteString(w, part)
				w.(http.Flusher).Flush()
			}
		case "/head":
			w.Header().Set("Content-Length", "1234")
			if r.Method != http.MethodHead {
				w.Write(make([]byte, 1234))
			}
		case "/204":
			w.WriteHeader(http.StatusNoContent)
		case "/304":
			w.Header().Set("ETag", `"v1"`)
			w.WriteHeader(http.StatusNotModified)
		default:
			io.WriteString(w, "next")
		}
	}))
	base := strings.TrimPrefix(httpOrigin, "http://")
	p := startProxy(t)

	tests := []struct {
		name     string
		req      string
		method   string
		status   int
		body     string
		chunked  bool   // response reached the client chunked
		length   int64  // expected resp.ContentLength when not chunked (-1 = any)
		wantHead string // a response field "Name: value" that must be present
	}{
		{
			name:   "chunked request body",
			req:    "POST http://" + base + "/echo HTTP/1.1\r\nHost: " + base + "\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nhello \r\n8\r\nchunked \r\n5\r\nworld\r\n0\r\n\r\n",
			method: "POST", status: 200, body: "te=chunked body=hello chunked world", length: -1,
		},
		{
			name:   "content-length request body",
			req:    "PUT http://" + base + "/echo HTTP/1.1\r\nHost: " + base + "\r\nContent-Length: 5\r\n\r\nfixed",
			method: "PUT", status: 200, body: "te= body=fixed", length: 14,
		},
		{
			name:   "chunked response",
			req:    "GET http://" + base + "/chunked HTTP/1.1\r\nHost: " + base + "\r\n\r\n",
			method: "GET", status: 200, body: "alpha,beta,gamma", chunked: true,
		},
		{
			name:   "HEAD keeps Content-Length and sends no body",
			req:    "HEAD http://" + base + "/head HTTP/1.1\r\nHost: " + base + "\r\n\r\n",
			method: "HEAD", status: 200, body: "", length: 1234,
		},
		{
			name:   "204 has no body",
			req:    "GET http://" + base + "/204 HTTP/1.1\r\nHost: " + base + "\r\n\r\n",
			method: "GET", status: 204, body: "", length: 0,
		},
		{
			name:   "304 has no body",
			req:    "GET http://" + base + "/304 HTTP/1.1\r\nHost: " + base + "\r\nIf-None-Match: \"v1\"\r\n\r\n",
			method: "GET", status: 304, body: "", length: 0, wantHead: `Etag: "v1"`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := dial(t, p.addr)
			br := bufio.NewReader(c)
			resp, body := exchange(t, c, br, tc.req, tc.method)
			if resp.StatusCode != tc.status || string(body) != tc.body {
				t.Fatalf("got %d %q, want %d %q", resp.StatusCode, body, tc.status, tc.body)
			}
			gotChunked := len(resp.TransferEncoding) == 1 && resp.TransferEncoding[0] == "chunked"
			if gotChunked != tc.chunked {
				t.Errorf("chunked = %v (TE %q), want %v", gotChunked, resp.TransferEncoding, tc.chunked)
			}
			if !tc.chunked && tc.length >= 0 && resp.ContentLength != tc.length {
				t.Errorf("ContentLength = %d, want %d", resp.ContentLength, tc.length)
			}
			if tc.wantHead != "" {
				k, v, _ := strings.Cut(tc.wantHead, ": ")
				if resp.Header.Get(k) != v {
					t.Errorf("%s = %q, want %q", k, resp.Header.Get(k), v)
				}
			}
			if resp.Close {
				t.Fatalf("proxy closed the client connection after %s", tc.name)
			}
			resp, body = exchange(t, c, br, "GET http://"+base+"/next HTTP/1.1\r\nHost: "+base+"\r\n\r\n", "GET")
			if resp.StatusCode != 200 || string(body) != "next" {
				t.Fatalf("second request on the connection: %d %q, want 200 \"next\"", resp.StatusCode, body)
			}
		})
	}
}

// TestCloseDelimitedAndHTTP10 covers what only a raw origin sends: a body
// delimited by the close, and an HTTP/1.0 origin, to 1.1 and 1.0 clients.
func TestCloseDelimitedAndHTTP10(t *testing.T) {
	t.Parallel()
	closeDelimited := answeringOrigin(t, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the origin closes", false)
	http10 := startRawOrigin(t, func(c net.Conn, _ *bufio.Reader, _ string) bool {
		io.WriteString(c, "HTTP/1.0 200 OK\r\nContent-Length: 5\r\n\r\nhello")
		return true // an HTTP/1.0 response without keep-alive must still not be pooled
	})
	p := startProxy(t)

	tests := []struct {
		name      string
		origin    *rawOrigin
		version   string
		body      string
		chunked   bool
		keepAlive bool // client connection usable afterwards
		via       string
		conns     int32 // origin connections after two requests (or one when !keepAlive)
	}{
		{name: "close-delimited to HTTP/1.1 client is re-chunked", origin: closeDelimited, version: "HTTP/1.1",
			body: "until the origin closes", chunked: true, keepAlive: true, via: "1.1 egressd", conns: 2},
		{name: "close-delimited to HTTP/1.0 client stays close-delimited", origin: closeDelimited, version: "HTTP/1.0",
			body: "until the origin closes", keepAlive: false, via: "1.0 egressd", conns: 1},
		{name: "HTTP/1.0 origin is not pooled", origin: http10, version: "HTTP/1.1",
			body: "hello", keepAlive: true, via: "1.1 egressd", conns: 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := tc.origin.conns.Load()
			c := dial(t, p.addr)
			br := bufio.NewReader(c)
			req := "GET http://" + tc.origin.addr + "/x " + tc.version + "\r\nHost: " + tc.origin.addr + "\r\n\r\n"
			rounds := 1
			if tc.keepAlive {
				rounds = 2
			}
			for i := range rounds {
				resp, body := exchange(t, c, br, req, "GET")
				if resp.StatusCode != 200 || string(body) != tc.body {
					t.Fatalf("round %d: %d %q, want 200 %q", i, resp.StatusCode, body, tc.body)
				}
				if resp.Proto != "HTTP/1.1" {
					t.Errorf("round %d: response proto %s, want HTTP/1.1 (the proxy speaks 1.1)", i, resp.Proto)
				}
				gotChunked := len(resp.TransferEncoding) > 0
				if gotChunked != tc.chunked {
					t.Errorf("round %d: chunked = %v, want %v", i, gotChunked, tc.chunked)
				}
				if resp.Close == tc.keepAlive {
					t.Errorf("round %d: resp.Close = %v, want %v", i, resp.Close, !tc.keepAlive)
				}
				head := tc.origin.nextHead(t)
				if got := fieldValues(head, "Via"); len(got) != 1 || got[0] != tc.via {
					t.Errorf("round %d: upstream Via %q, want %q", i, got, tc.via)
				}
				if got := fieldValues(head, "Host"); len(got) != 1 || got[0] != tc.origin.addr {
					t.Errorf("round %d: upstream Host %q, want %q", i, got, tc.origin.addr)
				}
			}
			if !tc.keepAlive {
				expectEOF(t, c, br)
			}
			if got := tc.origin.conns.Load() - before; got != tc.conns {
				t.Errorf("origin saw %d new connections, want %d", got, tc.conns)
			}
		})
	}
}

func TestExpectContinue(t *testing.T) {
	t.Parallel()
	p := startProxy(t)
	// net/http sends 100 Continue when the handler first reads the body.
	honours := startHTTPOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "got %s", b)
	}))
	ignores := startRawOrigin(t, func(c net.Conn, br *bufio.Reader, head string) bool {
		n, _ := strconv.Atoi(fieldValues(head, "Content-Length")[0])
		b := make([]byte, n)
		if _, err := io.ReadFull(br, b); err != nil {
			return false
		}
		fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\ngot %s", 4+n, b)
		return true
	})
	refuses := answeringOrigin(t, "HTTP/1.1 413 Content Too Large\r\nContent-Length: 0\r\n\r\n", false)

	t.Run("origin sends 100: client waits for it before the body", func(t *testing.T) {
		host := strings.TrimPrefix(honours, "http://")
		c := dial(t, p.addr)
		br := bufio.NewReader(c)
		io.WriteString(c, "POST http://"+host+"/ HTTP/1.1\r\nHost: "+host+"\r\nExpect: 100-continue\r\nContent-Length: 7\r\n\r\n")
		interim, err := readRawHead(br)
		if err != nil {
			t.Fatalf("waiting for 100 Continue: %v", err)
		}
		if !strings.HasPrefix(interim, "HTTP/1.1 100 ") {
			t.Fatalf("first response %q, want 100 Continue before the body is sent", interim)
		}
		io.WriteString(c, "payload")
		resp, body := readResponse(t, br, "POST")
		if resp.StatusCode != 200 || string(body) != "got payload" {
			t.Fatalf("final response %d %q, want 200 \"got payload\"", resp.StatusCode, body)
		}
	})
	t.Run("origin ignores Expect: body still arrives", func(t *testing.T) {
		c := dial(t, p.addr)
		br := bufio.NewReader(c)
		start := time.Now()
		io.WriteString(c, "POST http://"+ignores.addr+"/ HTTP/1.1\r\nHost: "+ignores.addr+"\r\nExpect: 100-continue\r\nContent-Length: 7\r\n\r\npayload")
		resp, body := readResponse(t, br, "POST")
		if resp.StatusCode != 200 || string(body) != "got payload" {
			t.Fatalf("response %d %q, want 200 \"got payload\"", resp.StatusCode, body)
		}
		if el := time.Since(start); el > 5*time.Second {
			t.Errorf("took %s: the proxy should stop waiting for 100 after about a second", el)
		}
		head := ignores.nextHead(t)
		if v := fieldValues(head, "Expect"); len(v) != 1 || v[0] != "100-continue" {
			t.Errorf("upstream Expect %q, want the expectation forwarded", v)
		}
	})
	t.Run("origin answers before the body: relayed, then closed", func(t *testing.T) {
		c := dial(t, p.addr)
		br := bufio.NewReader(c)
		io.WriteString(c, "POST http://"+refuses.addr+"/ HTTP/1.1\r\nHost: "+refuses.addr+"\r\nExpect: 100-continue\r\nContent-Length: 7\r\n\r\n")
		resp, _ := readResponse(t, br, "POST")
		if resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Fatalf("status %d, want the origin's 413", resp.StatusCode)
		}
		if !resp.Close {
			t.Errorf("response keeps the connection open although the unsent body is still owed")
		}
		expectEOF(t, c, br)
	})
}

func TestKeepAliveReusesBothSides(t *testing.T) {
	t.Parallel()
	var newConns atomic.Int32
	o := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.URL.Path)
	}))
	o.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			newConns.Add(1)
		}
	}
	o.Start()
	t.Cleanup(o.Close)
	host := strings.TrimPrefix(o.URL, "http://")
	p := startProxy(t)
	c := dial(t, p.addr)
	br := bufio.NewReader(c)
	for _, path := range []string{"/one", "/two", "/three"} {
		resp, body := exchange(t, c, br, "GET http://"+host+path+" HTTP/1.1\r\nHost: "+host+"\r\n\r\n", "GET")
		if resp.StatusCode != 200 || string(body) != path {
			t.Fatalf("%s: %d %q", path, resp.StatusCode, body)
		}
		if resp.Close {
			t.Fatalf("%s: proxy closed a keep-alive client connection", path)
		}
	}
	if n := newConns.Load(); n != 1 {
		t.Errorf("origin saw %d connections for 3 requests, want 1 pooled upstream connection", n)
	}
	if n := p.srv.OpenConnections(); n != 1 {
		t.Errorf("proxy has %d client connections, want the 1 kept alive", n)
	}
}

func TestOriginFormRequestIsRefused(t *testing.T) {
	t.Parallel()
	p := startProxy(t)
	c := dial(t, p.addr)
	br := bufio.NewReader(c)
	resp, body := exchange(t, c, br, "GET /index.html HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", "GET")
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("status %d, want 400", resp.StatusCode)
	}
	if got := resp.Header.Get("X-Proxy-Error"); got != "not_a_proxy_request" {
		t.Errorf("X-Proxy-Error %q, want not_a_proxy_request", got)
	}
	reqID := resp.Header.Get("X-Request-Id")
	want := "egressd: Bad Request: not a proxy request: send an absolute URL or CONNECT (request_id=" + reqID + ")\n"
	if reqID == "" || string(body) != want {
		t.Errorf("body %q, want %q", body, want)
	}
	expectEOF(t, c, br)
	e := p.waitAccess(t, "origin-form", func(e map[string]any) bool { return e["request_id"] == reqID })
	if e["status"] != int64(400) || e["error"] != "not_a_proxy_request" || e["decision"] != "error" {
		t.Errorf("access log status=%v error=%v decision=%v, want 400 not_a_proxy_request error", e["status"], e["error"], e["decision"])
	}
}

// TestStreaming proves bodies are relayed as they arrive, never buffered
// whole: each side only sends its second half after the other side has
// seen the first.
func TestStreaming(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	firstPartSeen := make(chan struct{})
	o := startHTTPOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/down":
			io.WriteString(w, "first;")
			w.(http.Flusher).Flush()
			select {
			case <-release:
			case <-time.After(ioTimeout):
				return
			}
			io.WriteString(w, "second")
		case "/up":
			buf := make([]byte, 6)
			if _, err := io.ReadFull(r.Body, buf); err != nil {
				return
			}
			close(firstPartSeen)
			rest, _ := io.ReadAll(r.Body)
			fmt.Fprintf(w, "%s%s", buf, rest)
		}
	}))
	host := strings.TrimPrefix(o, "http://")
	p := startProxy(t)

	t.Run("response", func(t *testing.T) {
		c := dial(t, p.addr)
		br := bufio.NewReader(c)
		io.WriteString(c, "GET http://"+host+"/down HTTP/1.1\r\nHost: "+host+"\r\n\r\n")
		resp, err := http.ReadResponse(br, &http.Request{Method: "GET"})
		if err != nil {
			t.Fatalf("read response: %v", err)
		}
		defer resp.Body.Close()
		first := make([]byte, 6)
		if _, err := io.ReadFull(resp.Body, first); err != nil || string(first) != "first;" {
			t.Fatalf("first part %q, %v: want it before the origin finishes", first, err)
		}
		close(release)
		rest, err := io.ReadAll(resp.Body)
		if err != nil || string(rest) != "second" {
			t.Fatalf("rest %q, %v", rest, err)
		}
	})
	t.Run("request", func(t *testing.T) {
		c := dial(t, p.addr)
		br := bufio.NewReader(c)
		io.WriteString(c, "POST http://"+host+"/up HTTP/1.1\r\nHost: "+host+"\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nfirst;\r\n")
		select {
		case <-firstPartSeen:
		case <-time.After(ioTimeout):
			t.Fatal("origin never saw the first chunk: the request body is being buffered")
		}
		io.WriteString(c, "6\r\nsecond\r\n0\r\n\r\n")
		resp, body := readResponse(t, br, "POST")
		if resp.StatusCode != 200 || string(body) != "first;second" {
			t.Fatalf("%d %q, want 200 \"first;second\"", resp.StatusCode, body)
		}
	})
}

// TestUpstreamEdgeCases covers origins that misbehave or are slow: each
// gets the documented proxy status, and the client connection is left in
// a state the next request can trust.
func TestUpstreamEdgeCases(t *testing.T) {
	t.Parallel()
	bothFramings := startRawOrigin(t, func(c net.Conn, _ *bufio.Reader, _ string) bool {
		// Chunked wins over Content-Length (RFC 9112 §6.3), and a
		// connection that sent both must not be reused.
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
		return true
	})
	silent := startRawOrigin(t, func(c net.Conn, br *bufio.Reader, _ string) bool {
		br.ReadByte() // wait for the proxy to give up
		return false
	})
	hangsUp := startRawOrigin(t, func(net.Conn, *bufio.Reader, string) bool { return false })
	notHTTP := answeringOrigin(t, "SSH-2.0-OpenSSH_9.6\r\n\r\n", false)
	p := startProxy(t, withConfig(func(c *proxy.Config) { c.ResponseHeaderTimeout = 300 * time.Millisecond }))

	tests := []struct {
		name   string
		origin *rawOrigin
		status int
		reason string // X-Proxy-Error, "" for a relayed response
		body   string
		conns  int32 // origin connections after two requests
	}{
		{name: "Content-Length and chunked: chunked wins, not pooled", origin: bothFramings, status: 200, body: "hello", conns: 2},
		{name: "origin never answers", origin: silent, status: 504, reason: "upstream_timeout"},
		{name: "origin closes without a response", origin: hangsUp, status: 502, reason: "upstream"},
		{name: "origin speaks something else", origin: notHTTP, status: 502, reason: "upstream"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := tc.origin.conns.Load()
			c := dial(t, p.addr)
			br := bufio.NewReader(c)
			req := "GET http://" + tc.origin.addr + "/ HTTP/1.1\r\nHost: " + tc.origin.addr + "\r\n\r\n"
			resp, body := exchange(t, c, br, req, "GET")
			if resp.StatusCode != tc.status || resp.Header.Get("X-Proxy-Error") != tc.reason {
				t.Fatalf("%d %q (%q), want %d %q", resp.StatusCode, resp.Header.Get("X-Proxy-Error"), body, tc.status, tc.reason)
			}
			if tc.reason != "" {
				return
			}
			if string(body) != tc.body {
				t.Fatalf("body %q, want %q", body, tc.body)
			}
			resp, body = exchange(t, c, br, req, "GET")
			if resp.StatusCode != tc.status || string(body) != tc.body {
				t.Fatalf("second request: %d %q", resp.StatusCode, body)
			}
			if got := tc.origin.conns.Load() - before; got != tc.conns {
				t.Errorf("origin saw %d connections, want %d", got, tc.conns)
			}
		})
	}
}

// An origin response with conflicting Content-Length values is never
// relayed; the client must get a 502, and the access log must not say 200.
func TestConflictingUpstreamContentLength(t *testing.T) {
	o := answeringOrigin(t, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", false)
	p := startProxy(t)
	c := dial(t, p.addr)
	br := bufio.NewReader(c)
	io.WriteString(c, "GET http://"+o.addr+"/ HTTP/1.1\r\nHost: "+o.addr+"\r\n\r\n")
	got, _ := io.ReadAll(br)
	e := p.waitAccess(t, "bad CL", func(map[string]any) bool { return true })
	if !strings.HasPrefix(string(got), "HTTP/1.1 502 ") || !strings.Contains(string(got), "X-Proxy-Error: upstream") {
		t.Fatalf("client got %q, want a 502 naming the upstream", got)
	}
	if strings.Contains(string(got), "hello") {
		t.Fatalf("the unframeable body leaked to the client: %q", got)
	}
	if e["status"] != int64(502) || e["error"] != "upstream" {
		t.Fatalf("access log status=%v error=%v, want 502 upstream", e["status"], e["error"])
	}
}

// TestStaleUpstreamIsRetried: an origin that closes an idle keep-alive
// connection must not turn the next request into an error.
func TestStaleUpstreamIsRetried(t *testing.T) {
	t.Parallel()
	o := startRawOrigin(t, func(c net.Conn, _ *bufio.Reader, _ string) bool {
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		return false // close right after, without announcing it
	})
	p := startProxy(t)
	c := dial(t, p.addr)
	br := bufio.NewReader(c)
	req := "GET http://" + o.addr + "/ HTTP/1.1\r\nHost: " + o.addr + "\r\n\r\n"
	for i := range 3 {
		resp, body := exchange(t, c, br, req, "GET")
		if resp.StatusCode != 200 || string(body) != "ok" {
			t.Fatalf("request %d: %d %q, want 200 ok", i, resp.StatusCode, body)
		}
		time.Sleep(20 * time.Millisecond) // let the origin's FIN arrive
	}
	if n := o.conns.Load(); n != 3 {
		t.Errorf("origin saw %d connections, want 3 (one per request)", n)
	}
}

func TestPipelinedRequests(t *testing.T) {
	t.Parallel()
	o := startHTTPOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.URL.Path)
	}))
	host := strings.TrimPrefix(o, "http://")
	p := startProxy(t)
	c := dial(t, p.addr)
	br := bufio.NewReader(c)
	var all strings.Builder
	paths := []string{"/a", "/b", "/c"}
	for _, path := range paths {
		all.WriteString("GET http://" + host + path + " HTTP/1.1\r\nHost: " + host + "\r\n\r\n")
	}
	io.WriteString(c, all.String())
	for _, path := range paths {
		resp, body := readResponse(t, br, "GET")
		if resp.StatusCode != 200 || string(body) != path {
			t.Fatalf("pipelined %s: %d %q", path, resp.StatusCode, body)
		}
	}
}

func TestHTTP10KeepAlive(t *testing.T) {
	t.Parallel()
	o := startHTTPOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "hi")
	}))
	host := strings.TrimPrefix(o, "http://")
	p := startProxy(t)
	c := dial(t, p.addr)
	br := bufio.NewReader(c)
	for i := range 2 {
		resp, body := exchange(t, c, br, "GET http://"+host+"/ HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", "GET")
		if resp.StatusCode != 200 || string(body) != "hi" {
			t.Fatalf("request %d: %d %q", i, resp.StatusCode, body)
		}
		if resp.Header.Get("Connection") != "keep-alive" || resp.ContentLength != 2 {
			t.Fatalf("request %d: Connection %q, Content-Length %d; want keep-alive and 2", i, resp.Header.Get("Connection"), resp.ContentLength)
		}
	}
}

// TestUpgradeBecomesTunnel: a 101 Switching Protocols on plain HTTP (a
// WebSocket) turns the connection into a byte pipe both ways.
func TestUpgradeBecomesTunnel(t *testing.T) {
	t.Parallel()
	o := startRawOrigin(t, func(c net.Conn, br *bufio.Reader, head string) bool {
		if v := fieldValues(head, "Upgrade"); len(v) != 1 || v[0] != "websocket" {
			io.WriteString(c, "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
			return false
		}
		io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
		io.Copy(c, br)
		return false
	})
	p := startProxy(t)
	c := dial(t, p.addr)
	br := bufio.NewReader(c)
	io.WriteString(c, "GET http://"+o.addr+"/ws HTTP/1.1\r\nHost: "+o.addr+"\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
	resp, err := http.ReadResponse(br, &http.Request{Method: "GET"})
	if err != nil {
		t.Fatalf("read 101: %v", err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols || resp.Header.Get("Upgrade") != "websocket" {
		t.Fatalf("%d Upgrade=%q, want 101 websocket", resp.StatusCode, resp.Header.Get("Upgrade"))
	}
	for _, msg := range []string{"frame one", "frame two"} {
		io.WriteString(c, msg)
		buf := make([]byte, len(msg))
		if _, err := io.ReadFull(br, buf); err != nil || string(buf) != msg {
			t.Fatalf("echo over the upgraded connection: %q, %v", buf, err)
		}
	}
}

// TestConnectionLimit: when the tenants hold max_connections, a new
// client gets 503 connection_limit once its PROXY header is read, while a
// load balancer probe (a LOCAL header) is still answered from the small
// reserve above the cap, so a busy node is not taken out of rotation.
func TestConnectionLimit(t *testing.T) {
	t.Parallel()
	echo := startEcho(t)
	// Share 1: this is the global cap, which one tenant may fill here.
	p := startProxy(t, withConfig(func(c *proxy.Config) {
		requiredPP(c)
		c.MaxConnections, c.TenantConnectionShare = 2, 1
	}))
	for range 2 {
		connectAs(t, p, demoLinkID, echo) // under the cap
	}
	c := dialPP(t, p.addr, demoLinkID)
	br := bufio.NewReader(c)
	io.WriteString(c, "GET http://"+echo+"/ HTTP/1.1\r\nHost: "+echo+"\r\n\r\n")
	resp, body := readResponse(t, br, "GET")
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("X-Proxy-Error") != "connection_limit" {
		t.Fatalf("%d %q (%q), want 503 connection_limit", resp.StatusCode, resp.Header.Get("X-Proxy-Error"), body)
	}
	expectEOF(t, c, br)

	probe := dial(t, p.addr)
	probe.Write(headerBytes(t, &proxyproto.Header{Version: 2, Command: proxyproto.LOCAL}))
	io.WriteString(probe, "GET /healthz HTTP/1.1\r\nHost: lb\r\n\r\n")
	if resp, _ := readResponse(t, bufio.NewReader(probe), "GET"); resp.StatusCode != 200 {
		t.Fatalf("load balancer probe while the tenants hold the cap: %d, want 200", resp.StatusCode)
	}
}

// TestHTTPSAbsoluteForm: GET https://... (no CONNECT) makes the proxy
// speak TLS upstream, and it must verify the origin's certificate.
func TestHTTPSAbsoluteForm(t *testing.T) {
	t.Parallel()
	o := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "tls=%v host=%s", r.TLS != nil, r.Host)
	}))
	t.Cleanup(o.Close)
	host := strings.TrimPrefix(o.URL, "https://")
	roots := x509.NewCertPool()
	roots.AddCert(o.Certificate())
	trusting := startProxy(t, withDeps(func(d *proxy.Deps) {
		d.UpstreamTLS = func(name string) *tls.Config { return &tls.Config{ServerName: name, RootCAs: roots} }
	}))
	// The default verifies against the system roots, which do not know
	// httptest's certificate: the request must fail, not pass unverified.
	verifying := startProxy(t)
	tests := []struct {
		name   string
		p      *testProxy
		status int
		body   string
	}{
		{name: "trusted origin", p: trusting, status: 200, body: "tls=true host=" + host},
		{name: "untrusted origin certificate", p: verifying, status: 502},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := dial(t, tc.p.addr)
			resp, body := exchange(t, c, bufio.NewReader(c), "GET https://"+host+"/ HTTP/1.1\r\nHost: "+host+"\r\n\r\n", "GET")
			if resp.StatusCode != tc.status || tc.body != "" && string(body) != tc.body {
				t.Fatalf("%d %q, want %d %q", resp.StatusCode, body, tc.status, tc.body)
			}
		})
	}
}
