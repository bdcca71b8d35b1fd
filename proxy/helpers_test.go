package proxy_test

// Shared helpers for the end-to-end suite: a real proxy on a loopback port
// with a real policy, PROXY v2 senders, raw-socket clients and origins, and
// bounded waits. Nothing here talks to anything but 127.0.0.0/8.

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	proxyproto "github.com/pires/go-proxyproto"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/egressd/egressd/acl"
	"github.com/egressd/egressd/metrics"
	"github.com/egressd/egressd/proxy"
	"github.com/egressd/egressd/tlsinspect"
)

const (
	demoTenant = "demo"
	demoLinkID = 1001
	curlPath   = "/usr/bin/curl"
	// ioTimeout bounds every single read or write a test does, so a proxy
	// bug shows up as a failure rather than a hung suite.
	ioTimeout = 10 * time.Second
)

// testACL is a real policy config: tenant demo is recognised by its
// LinkID or by a loopback source, and may reach loopback (which the SSRF
// guard refuses unless a rule names it) and the fake names below.
func testACL() acl.Config {
	return acl.Config{Tenants: []acl.TenantConfig{{
		Name:        demoTenant,
		LinkIDs:     []uint32{demoLinkID},
		SourceCIDRs: []string{"127.0.0.0/8", "::1/128"},
		Rules: []acl.RuleConfig{
			{Name: "loopback-origins", CIDRs: []string{"127.0.0.0/8", "::1/128"}},
			{Name: "test-names", Domains: []string{"example.com", ".origin.test"}},
		},
	}}}
}

func compilePolicy(t testing.TB, cfg acl.Config) *acl.Policy {
	t.Helper()
	pol, err := acl.Compile(cfg)
	if err != nil {
		t.Fatalf("compile test policy: %v", err)
	}
	return pol
}

// resolverFunc answers name lookups with a function; no test resolver
// ever asks real DNS.
type resolverFunc func(ctx context.Context, host string) ([]netip.Addr, error)

func (f resolverFunc) LookupNetIP(ctx context.Context, _, host string) ([]netip.Addr, error) {
	return f(ctx, host)
}

// staticResolver answers from hosts, /etc/hosts style, and says "no such
// host" for every other name.
func staticResolver(hosts map[string][]netip.Addr) resolverFunc {
	return func(_ context.Context, host string) ([]netip.Addr, error) {
		if a, ok := hosts[host]; ok {
			return append([]netip.Addr(nil), a...), nil
		}
		return nil, &net.DNSError{Err: "no such host (test resolver)", Name: host, IsNotFound: true}
	}
}

// loopbackResolver resolves each of names to 127.0.0.1.
func loopbackResolver(names ...string) resolverFunc {
	hosts := map[string][]netip.Addr{}
	for _, n := range names {
		hosts[n] = []netip.Addr{netip.MustParseAddr("127.0.0.1")}
	}
	return staticResolver(hosts)
}

// loopbackOnlyDial is the upstream dialer of every test proxy: even if a
// policy bug let a request through to another address, no packet leaves
// the machine.
func loopbackOnlyDial(ctx context.Context, network, address string) (net.Conn, error) {
	ap, err := netip.ParseAddrPort(address)
	if err != nil || !ap.Addr().Unmap().IsLoopback() {
		return nil, fmt.Errorf("test dialer: refusing non-loopback address %q", address)
	}
	var d net.Dialer
	return d.DialContext(ctx, network, address)
}

// testProxy is one running proxy.Server and what it logged.
type testProxy struct {
	srv    *proxy.Server
	addr   string
	access *observer.ObservedLogs
	events *observer.ObservedLogs
	done   chan error // Serve's return value

	pki   *trustSet    // withInspection's trust world, else nil
	certs *certCounter // the inspector's event counts, else nil
}

// proxyBuild is what startProxy assembles before proxy.New: the options
// edit it in order, and the policy is compiled from acl after the last one
// unless an option set deps.Policy itself.
type proxyBuild struct {
	t    testing.TB
	cfg  proxy.Config
	deps proxy.Deps
	acl  acl.Config

	// Set by withMetrics: the metrics are built after the policy.
	reg *prometheus.Registry

	// Set by withInspection: the inspector is loaded after the options.
	inspect *tlsinspect.Config
	pki     *trustSet
	certs   *certCounter
}

type proxyOption func(*proxyBuild)

func withConfig(f func(*proxy.Config)) proxyOption {
	return func(b *proxyBuild) { f(&b.cfg) }
}

func withDeps(f func(*proxy.Deps)) proxyOption {
	return func(b *proxyBuild) { f(&b.deps) }
}

// withACL edits the test policy before it is compiled.
func withACL(f func(*acl.Config)) proxyOption {
	return func(b *proxyBuild) { f(&b.acl) }
}

// withPolicy replaces the test policy.
func withPolicy(cfg acl.Config) proxyOption {
	return func(b *proxyBuild) { b.acl = cfg }
}

func withResolver(r proxy.Resolver) proxyOption {
	return withDeps(func(d *proxy.Deps) { d.Resolver = r })
}

func withDial(f proxy.DialFunc) proxyOption {
	return withDeps(func(d *proxy.Deps) { d.Dial = f })
}

// withMetrics registers the proxy's metrics in reg.
func withMetrics(reg *prometheus.Registry) proxyOption {
	return func(b *proxyBuild) { b.reg = reg }
}

// withAccessFormat writes the access log in format to w instead of the
// observer that accessEntries reads.
func withAccessFormat(format string, w io.Writer) proxyOption {
	return withDeps(func(d *proxy.Deps) { d.LogFormat, d.AccessWriter = format, w })
}

// optionalPP is the dev-config mode: a trusted loopback peer may send a
// PROXY header, and a connection without one is identified by its socket.
func optionalPP(c *proxy.Config) {
	c.ProxyProtocol = proxy.PPOptional
	c.TrustedProxies = []string{"127.0.0.0/8", "::1"}
}

// requiredPP is the AKS mode, with a short header timeout to keep tests fast.
func requiredPP(c *proxy.Config) {
	c.ProxyProtocol = proxy.PPRequired
	c.TrustedProxies = []string{"127.0.0.0/8"}
	c.ProxyHeaderTimeout = 300 * time.Millisecond
}

// startProxy runs a proxy on a fresh loopback port and shuts it down at
// cleanup. The default mode is proxy_protocol optional.
func startProxy(t testing.TB, opts ...proxyOption) *testProxy {
	t.Helper()
	b := &proxyBuild{
		t:   t,
		cfg: proxy.Config{Listen: "127.0.0.1:0", DialTimeout: 3 * time.Second},
		acl: testACL(),
	}
	optionalPP(&b.cfg)
	accessCore, access := observer.New(zapcore.InfoLevel)
	eventCore, events := observer.New(zapcore.DebugLevel)
	b.deps = proxy.Deps{
		Log:       zap.New(eventCore),
		AccessLog: zap.New(accessCore),
		Resolver:  loopbackResolver(),
		Dial:      loopbackOnlyDial,
	}
	for _, o := range opts {
		o(b)
	}
	if b.deps.Policy == nil {
		b.deps.Policy = compilePolicy(t, b.acl)
	}
	if b.reg != nil {
		// As the binary does: the policy's tenants are declared, so
		// their series are labelled by name rather than "unknown".
		m := metrics.New(b.reg, metrics.BuildInfo{})
		if pol, ok := b.deps.Policy.(interface{ Tenants() []string }); ok {
			m.SetTenants(pol.Tenants())
		}
		b.deps.Metrics = m
	}
	if b.inspect != nil {
		b.loadInspector()
	}
	cfg, deps := b.cfg, b.deps
	// As config.Parse does before the binary calls New.
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		t.Fatalf("proxy config: %v", err)
	}
	srv, err := proxy.New(cfg, deps)
	if err != nil {
		t.Fatalf("proxy.New: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	p := &testProxy{srv: srv, addr: ln.Addr().String(), access: access, events: events, done: make(chan error, 1),
		pki: b.pki, certs: b.certs}
	go func() { p.done <- srv.Serve(ln) }()
	t.Cleanup(func() { p.shutdown(t) })
	return p
}

// shutdown drains with a bound; safe to call twice.
func (p *testProxy) shutdown(t testing.TB) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := p.srv.Shutdown(ctx)
	select {
	case serr := <-p.done:
		if !errors.Is(serr, proxy.ErrServerClosed) {
			t.Errorf("Serve returned %v, want %v", serr, proxy.ErrServerClosed)
		}
	case <-time.After(5 * time.Second):
		t.Errorf("Serve did not return after Shutdown")
	}
	p.done <- proxy.ErrServerClosed // keep a second call from blocking
	return err
}

// accessEntries returns the context of every access-log line so far.
func (p *testProxy) accessEntries() []map[string]any {
	var out []map[string]any
	for _, e := range p.access.FilterMessage("access").All() {
		out = append(out, e.ContextMap())
	}
	return out
}

// waitAccess waits for an access-log line matching keep and returns it.
func (p *testProxy) waitAccess(t testing.TB, what string, keep func(map[string]any) bool) map[string]any {
	t.Helper()
	var found map[string]any
	waitFor(t, 5*time.Second, "access log line for "+what, func() bool {
		for _, e := range p.accessEntries() {
			if keep(e) {
				found = e
				return true
			}
		}
		return false
	})
	return found
}

// waitFor polls cond until it holds or the bound passes.
func waitFor(t testing.TB, bound time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(bound)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", bound, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// dial opens a client connection to addr with an overall deadline.
func dial(t testing.TB, addr string) *net.TCPConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, ioTimeout)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	c.SetDeadline(time.Now().Add(ioTimeout))
	t.Cleanup(func() { c.Close() })
	return c.(*net.TCPConn)
}

// ppv2Header builds a PROXY v2 PROXY-command header from src to dst,
// carrying the Azure private endpoint LinkID TLV when linkID is non-zero.
func ppv2Header(t testing.TB, src, dst string, linkID uint32) *proxyproto.Header {
	t.Helper()
	h := proxyproto.HeaderProxyFromAddrs(2, net.TCPAddrFromAddrPort(netip.MustParseAddrPort(src)),
		net.TCPAddrFromAddrPort(netip.MustParseAddrPort(dst)))
	if linkID != 0 {
		if err := h.SetTLVs([]proxyproto.TLV{azureLinkID(linkID)}); err != nil {
			t.Fatalf("set TLVs: %v", err)
		}
	}
	return h
}

// azureLinkID is TLV 0xEE: subtype 0x01 then the LinkID, little-endian.
func azureLinkID(id uint32) proxyproto.TLV {
	v := []byte{0x01, 0, 0, 0, 0}
	binary.LittleEndian.PutUint32(v[1:], id)
	return proxyproto.TLV{Type: 0xEE, Value: v}
}

// dialPP dials the proxy and sends a v2 header with linkID from a
// consumer-VNet address (as Azure would), before any HTTP.
func dialPP(t testing.TB, addr string, linkID uint32) *net.TCPConn {
	t.Helper()
	c := dial(t, addr)
	if _, err := ppv2Header(t, "10.2.0.7:40000", "10.2.128.100:3128", linkID).WriteTo(c); err != nil {
		t.Fatalf("write PROXY header: %v", err)
	}
	return c
}

// exchange writes raw request bytes and reads one response.
func exchange(t testing.TB, c net.Conn, br *bufio.Reader, raw, method string) (*http.Response, []byte) {
	t.Helper()
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatalf("write request: %v", err)
	}
	return readResponse(t, br, method)
}

// readResponse reads one response and its whole body.
func readResponse(t testing.TB, br *bufio.Reader, method string) (*http.Response, []byte) {
	t.Helper()
	resp, err := http.ReadResponse(br, &http.Request{Method: method})
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatalf("read response body: %v", err)
	}
	return resp, body
}

// expectClosed asserts the peer closes c without sending a single byte.
func expectClosed(t testing.TB, c net.Conn, within time.Duration) {
	t.Helper()
	expectNothingMore(t, c, c, within)
}

// expectEOF asserts nothing more arrives on br and the peer closed.
func expectEOF(t testing.TB, c net.Conn, br *bufio.Reader) {
	t.Helper()
	expectNothingMore(t, c, br, ioTimeout)
}

func expectNothingMore(t testing.TB, c net.Conn, r io.Reader, within time.Duration) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(within))
	b, err := io.ReadAll(r)
	if len(b) > 0 {
		t.Fatalf("got %d more bytes (%q), want the connection closed without them", len(b), truncate(b))
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("connection still open after %s, want it closed", within)
	}
}

func truncate(b []byte) []byte {
	if len(b) > 120 {
		return b[:120]
	}
	return b
}

func randomBytes(t testing.TB, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func sum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// getVia sends one plain absolute-form GET through the proxy on a fresh
// connection (with the PROXY header when linkID is non-zero) and returns
// the status and body. It is the "does the server still serve" probe.
func getVia(t testing.TB, p *testProxy, url string, linkID uint32) (int, []byte) {
	t.Helper()
	var c *net.TCPConn
	if linkID != 0 {
		c = dialPP(t, p.addr, linkID)
	} else {
		c = dial(t, p.addr)
	}
	defer c.Close()
	host := strings.TrimPrefix(url, "http://")
	host, _, _ = strings.Cut(host, "/")
	resp, body := exchange(t, c, bufio.NewReader(c), "GET "+url+" HTTP/1.1\r\nHost: "+host+"\r\nConnection: close\r\n\r\n", "GET")
	return resp.StatusCode, body
}

// helloOrigin is an http origin that answers "hello".
func helloOrigin(t testing.TB) string {
	t.Helper()
	return startHTTPOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, "hello")
	}))
}

// startHTTPOrigin runs h on a loopback httptest server closed at cleanup
// and returns its base URL.
func startHTTPOrigin(t testing.TB, h http.Handler) string {
	t.Helper()
	o := httptest.NewServer(h)
	t.Cleanup(o.Close)
	return o.URL
}

// rawOrigin is a loopback TCP origin driven by a per-request function,
// for responses net/http would never send (close-delimited, HTTP/1.0,
// hop-by-hop headers, ignored Expect).
type rawOrigin struct {
	addr  string
	conns atomic.Int32
	heads chan string
}

// rawHandler answers one request whose head (request line and fields,
// CRLF-separated, no final blank line) has been read; it reports whether
// the connection may carry another request.
type rawHandler func(c net.Conn, br *bufio.Reader, head string) (keep bool)

func startRawOrigin(t testing.TB, h rawHandler) *rawOrigin {
	t.Helper()
	o := &rawOrigin{heads: make(chan string, 64)}
	o.addr = startTCPServer(t, func(c *net.TCPConn) {
		o.conns.Add(1)
		br := bufio.NewReader(c)
		for {
			head, err := readRawHead(br)
			if err != nil {
				return
			}
			select {
			case o.heads <- head:
			default:
			}
			if !h(c, br, head) {
				return
			}
		}
	})
	return o
}

// answeringOrigin is a rawOrigin that sends response to every request;
// keep says whether the connection may carry another.
func answeringOrigin(t testing.TB, response string, keep bool) *rawOrigin {
	t.Helper()
	return startRawOrigin(t, func(c net.Conn, _ *bufio.Reader, _ string) bool {
		io.WriteString(c, response)
		return keep
	})
}

// okOrigin answers every request with 200 "ok" on a keep-alive
// connection; its heads let a test prove a refused request never reached it.
func okOrigin(t testing.TB) *rawOrigin {
	t.Helper()
	return answeringOrigin(t, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", true)
}

// connSet tracks a test server's connections so cleanup can cut the ones
// a proxy still holds in its idle pool instead of waiting out a deadline.
type connSet struct {
	mu sync.Mutex
	m  map[net.Conn]struct{}
}

func (s *connSet) add(c net.Conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = make(map[net.Conn]struct{})
	}
	s.m[c] = struct{}{}
}

func (s *connSet) remove(c net.Conn) {
	c.Close()
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, c)
}

func (s *connSet) closeAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.m {
		c.Close()
	}
}

// nextHead returns the next request head the origin received.
func (o *rawOrigin) nextHead(t testing.TB) string {
	t.Helper()
	select {
	case h := <-o.heads:
		return h
	case <-time.After(ioTimeout):
		t.Fatal("origin received no request")
		return ""
	}
}

func readRawHead(br *bufio.Reader) (string, error) {
	var lines []string
	for {
		l, err := br.ReadString('\n')
		if err != nil {
			return "", err
		}
		l = strings.TrimRight(l, "\r\n")
		if l == "" {
			return strings.Join(lines, "\r\n"), nil
		}
		lines = append(lines, l)
		if len(lines) > 200 {
			return "", errors.New("head too long")
		}
	}
}

// headFields splits a raw head into its lines after the first.
func headFields(head string) []string {
	lines := strings.Split(head, "\r\n")
	return lines[1:]
}

// fieldValues returns the values of every field named name (case-insensitive).
func fieldValues(head, name string) []string {
	var out []string
	for _, l := range headFields(head) {
		k, v, ok := strings.Cut(l, ":")
		if ok && strings.EqualFold(k, name) {
			out = append(out, strings.TrimSpace(v))
		}
	}
	return out
}

// startEcho runs a loopback server that echoes each connection until EOF
// and then closes; it returns its address.
func startEcho(t testing.TB) string {
	t.Helper()
	return startTCPServer(t, func(c *net.TCPConn) {
		io.Copy(c, c)
		c.CloseWrite()
	})
}

// startTCPServer runs fn per accepted connection; cleanup waits for all.
func startTCPServer(t testing.TB, fn func(c *net.TCPConn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var open connSet
	t.Cleanup(func() { ln.Close(); open.closeAll(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			open.add(c)
			wg.Go(func() {
				defer open.remove(c)
				c.SetDeadline(time.Now().Add(2 * ioTimeout))
				fn(c.(*net.TCPConn))
			})
		}
	})
	return ln.Addr().String()
}

// connectOn sends CONNECT target on c and reads the response head; it
// returns the reader positioned after a 200. It returns errors instead of
// failing so goroutines can use it.
func connectOn(c net.Conn, target string) (*bufio.Reader, error) {
	br := bufio.NewReader(c)
	if _, err := io.WriteString(c, "CONNECT "+target+" HTTP/1.1\r\nHost: "+target+"\r\n\r\n"); err != nil {
		return nil, fmt.Errorf("CONNECT %s: %w", target, err)
	}
	resp, err := http.ReadResponse(br, &http.Request{Method: "CONNECT"})
	if err != nil {
		return nil, fmt.Errorf("CONNECT %s: %w", target, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("CONNECT %s: status %d", target, resp.StatusCode)
	}
	return br, nil
}

// openTunnel dials the proxy and opens CONNECT target (connectOn); the
// conn is closed on error.
func openTunnel(proxyAddr, target string) (net.Conn, *bufio.Reader, error) {
	c, err := net.DialTimeout("tcp", proxyAddr, ioTimeout)
	if err != nil {
		return nil, nil, fmt.Errorf("dial proxy: %w", err)
	}
	c.SetDeadline(time.Now().Add(ioTimeout))
	br, err := connectOn(c, target)
	if err != nil {
		c.Close()
		return nil, nil, err
	}
	return c, br, nil
}

// connectVia is openTunnel for the test goroutine: it fails the test on
// error and closes the tunnel at cleanup.
func connectVia(t testing.TB, p *testProxy, target string) (*net.TCPConn, *bufio.Reader) {
	t.Helper()
	c, br, err := openTunnel(p.addr, target)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c.(*net.TCPConn), br
}

// connectAs is connectVia from a consumer behind a private endpoint: the
// connection starts with a PROXY v2 header carrying linkID.
func connectAs(t testing.TB, p *testProxy, linkID uint32, target string) (*net.TCPConn, *bufio.Reader) {
	t.Helper()
	c := dialPP(t, p.addr, linkID)
	br, err := connectOn(c, target)
	if err != nil {
		t.Fatalf("link %d: %v", linkID, err)
	}
	return c, br
}

// curl runs the real curl with a clean environment (-q skips any
// ~/.curlrc; no *_proxy variable can redirect it) and returns what it
// wrote.
func curl(t testing.TB, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	if _, err := os.Stat(curlPath); err != nil {
		t.Skipf("curl not installed: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, curlPath, append([]string{"-q", "--silent", "--show-error", "--max-time", "25"}, args...)...)
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + t.TempDir()}
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err = cmd.Run()
	return out.String(), errb.String(), err
}

// portOf is the port of a host:port address.
func portOf(t testing.TB, addr string) string {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// echoes reports whether msg, written into a tunnel to an echo server,
// comes back whole within ioTimeout.
func echoes(c net.Conn, br *bufio.Reader, msg string) bool {
	c.SetDeadline(time.Now().Add(ioTimeout))
	if _, err := c.Write([]byte(msg)); err != nil {
		return false
	}
	buf := make([]byte, len(msg))
	_, err := io.ReadFull(br, buf)
	return err == nil && string(buf) == msg
}

// echoOnce is echoes for the test goroutine: it fails the test when the
// echo does not come back whole.
func echoOnce(t testing.TB, c net.Conn, br *bufio.Reader, msg string) {
	t.Helper()
	if !echoes(c, br, msg) {
		t.Fatalf("%q did not come back whole through the tunnel", msg)
	}
}

// freePort returns a loopback port nothing listens on right now.
func freePort(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// openFDs counts this process's file descriptors.
func openFDs(t testing.TB) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("cannot count descriptors: %v", err)
	}
	return len(ents)
}
