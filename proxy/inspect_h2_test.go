package proxy_test

// HTTP/2 inside inspected tunnels (issue 17): ALPN follows the upstream,
// every stream is decided, logged and answered on its own, and an
// HTTP/1.1-only upstream still serves a client that can speak h2.

import (
	"crypto/tls"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/egressd/egressd/acl"
)

// startH2Origin serves h over TLS with cert on 127.0.0.1, offering h2 and
// HTTP/1.1.
func startH2Origin(t testing.TB, cert tls.Certificate, h http.Handler) *tlsOrigin {
	t.Helper()
	o := &tlsOrigin{}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		o.requests.Add(1)
		h.ServeHTTP(w, r)
	}))
	srv.EnableHTTP2 = true
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	_, o.port, _ = net.SplitHostPort(srv.Listener.Addr().String())
	return o
}

// h2Client is a net/http client through the proxy that trusts only the
// corporate CA and attempts HTTP/2.
func h2Client(t testing.TB, s *testProxy) *http.Client {
	t.Helper()
	proxyURL, _ := url.Parse("http://" + s.addr)
	tr := &http.Transport{
		Proxy:             http.ProxyURL(proxyURL),
		TLSClientConfig:   &tls.Config{RootCAs: s.pki.corpPool},
		ForceAttemptHTTP2: true,
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: ioTimeout}
}

// noAdmin denies /admin on the test origins, so a stream's path decides.
func noAdmin(c *acl.Config) {
	c.Tenants[0].Rules = append([]acl.RuleConfig{
		{Name: "no-admin", Action: "deny", Domains: []string{".origin.test"}, Paths: []string{"/admin"}},
	}, c.Tenants[0].Rules...)
}

// TestH2StreamsInsideABumpAreEachDecided: a Go HTTP/2 client and curl
// --http2 reach an h2 origin through a bumped tunnel over HTTP/2 on both
// legs, with the minted certificate; each stream is decided on its own
// path (a denied one gets 403 and never reaches the origin), a stream
// naming another authority gets 421, and each gets its own access line
// with the tunnel's tenant.
func TestH2StreamsInsideABumpAreEachDecided(t *testing.T) {
	pki := newTrustSet(t)
	var mu sync.Mutex
	seen := map[string]int{} // path -> the HTTP major version the origin saw
	o := startH2Origin(t, pki.leaf(t, leafSpec{names: []string{"api.origin.test"}}, nil),
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			seen[r.URL.Path] = r.ProtoMajor
			mu.Unlock()
			fmt.Fprintf(w, "h%d %s via=%s", r.ProtoMajor, r.URL.Path, r.Header.Get("Via"))
		}))
	s := startProxy(t, withInspection(pki, acl.TLSInspectionConfig{Mode: "bump"}), withACL(noAdmin))
	base := "https://api.origin.test:" + o.port
	client := h2Client(t, s)

	get := func(path, host string) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", base+path, nil)
		if host != "" {
			req.Host = host
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	resp, body := get("/public", "")
	if resp.ProtoMajor != 2 || body != "h2 /public via=2 egressd" {
		t.Fatalf("GET /public = %s %q, want HTTP/2 on both legs", resp.Proto, body)
	}
	if leaf := resp.TLS.PeerCertificates[0]; leaf.CheckSignatureFrom(pki.corpCA) != nil {
		t.Errorf("leaf issued by %q, want the corporate CA", leaf.Issuer)
	}
	resp, body = get("/admin/users", "")
	if resp.StatusCode != 403 || resp.Header.Get("X-Proxy-Deny-Reason") != "rule" || !strings.Contains(body, "(rule no-admin)") {
		t.Errorf("GET /admin/users = %d %q, want 403 from rule no-admin", resp.StatusCode, body)
	}
	resp, _ = get("/elsewhere", "other.origin.test:"+o.port)
	if resp.StatusCode != http.StatusMisdirectedRequest {
		t.Errorf("stream with :authority other.origin.test = %d, want 421", resp.StatusCode)
	}
	// Concurrent streams on the one tunnel are each decided.
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := client.Get(fmt.Sprintf("%s/stream/%d", base, i))
			if err != nil {
				t.Errorf("stream %d: %v", i, err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || resp.ProtoMajor != 2 {
				t.Errorf("stream %d: %s %d", i, resp.Proto, resp.StatusCode)
			}
		}()
	}
	wg.Wait()

	mu.Lock()
	if _, ok := seen["/admin/users"]; ok {
		t.Error("the denied stream reached the origin")
	}
	if _, ok := seen["/elsewhere"]; ok {
		t.Error("the misdirected stream reached the origin")
	}
	if seen["/public"] != 2 {
		t.Errorf("origin saw /public over HTTP/%d, want 2", seen["/public"])
	}
	mu.Unlock()
	for path, want := range map[string]map[string]string{
		"/public":      {"status": "200", "decision": "allow", "tenant": demoTenant, "method": "GET", "url": base + "/public", "scheme": "https"},
		"/admin/users": {"status": "403", "decision": "deny", "rule": "no-admin", "error": "acl", "tenant": demoTenant},
		"/stream/7":    {"status": "200", "decision": "allow"},
	} {
		checkAccessFields(t, s.waitKind(t, "bumped", "api.origin.test", path), want)
	}
	s.waitAccess(t, "the 421 line", func(e map[string]any) bool {
		return accessField(e, "kind") == "bumped" && accessField(e, "status") == "421" && accessField(e, "error") == "misdirected" &&
			accessField(e, "tenant") == demoTenant
	})

	out, stderr, err := curl(t, "--http2", "-x", "http://"+s.addr, "--cacert", pki.corpCAPath,
		"-w", " %{http_version}", base+"/curl")
	if err != nil || out != "h2 /curl via=2 egressd 2" {
		t.Errorf("curl --http2 = %q (%v %s), want the h2 origin's answer over HTTP/2", out, err, stderr)
	}
}

// TestH2ClientWithHTTP1Upstream: the client leg is offered h2 only when
// the upstream chose h2, so a client that can speak both is served over
// HTTP/1.1 by an HTTP/1.1-only origin, and an h2-only client is told so
// in the handshake instead of being answered in another protocol.
func TestH2ClientWithHTTP1Upstream(t *testing.T) {
	pki := newTrustSet(t)
	o := startTLSOrigin(t, pki.leaf(t, leafSpec{names: []string{"api.origin.test"}}, nil),
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprintf(w, "h%d", r.ProtoMajor) }))
	s := startProxy(t, withInspection(pki, acl.TLSInspectionConfig{Mode: "bump"}))
	base := "https://api.origin.test:" + o.port

	resp, err := h2Client(t, s).Get(base + "/")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.ProtoMajor != 1 || string(b) != "h1" || resp.TLS.NegotiatedProtocol != "http/1.1" {
		t.Errorf("h2-capable client = %s %q (ALPN %q), want HTTP/1.1 on both legs", resp.Proto, b, resp.TLS.NegotiatedProtocol)
	}
	out, stderr, err := curl(t, "--http2", "-x", "http://"+s.addr, "--cacert", pki.corpCAPath, "-w", " %{http_version}", base+"/")
	if err != nil || out != "h1 1.1" {
		t.Errorf("curl --http2 = %q (%v %s), want HTTP/1.1", out, err, stderr)
	}
	_, err = tlsVia(s.addr, "api.origin.test:"+o.port, "api.origin.test", pki.corpPool, "h2")
	if err == nil || !strings.Contains(err.Error(), "no application protocol") {
		t.Errorf("h2-only client handshake: %v, want no_application_protocol", err)
	}
}
