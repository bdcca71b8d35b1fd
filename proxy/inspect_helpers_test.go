package proxy_test

// Helpers for the TLS inspection end-to-end tests: two separate PKIs per
// test (egressd's corporate inspection CA, and the root that signs the
// loopback origins' own certificates), HTTPS origins on loopback, the
// withInspection options of startProxy, an Observer that counts mints,
// and a client that speaks TLS through a CONNECT tunnel.

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/egressd/egressd/acl"
	"github.com/egressd/egressd/internal/testpki"
	"github.com/egressd/egressd/tlsinspect"
)

// trustSet is one test's trust world.
type trustSet struct {
	corpCAPath string // the inspection CA workloads trust (curl --cacert)
	corpKey    string
	corpCA     *x509.Certificate
	corpPool   *x509.CertPool

	originRootPath string // egressd's extra upstream_roots entry
	origin         *testpki.Cert
	originRoot     *x509.Certificate // origin.Cert
	originPool     *x509.CertPool
}

func newTrustSet(t testing.TB) *trustSet {
	t.Helper()
	dir := t.TempDir()
	certPath, keyPath, err := tlsinspect.InitCA(filepath.Join(dir, "corp"), time.Now())
	if err != nil {
		t.Fatalf("init corporate CA: %v", err)
	}
	corp := readCertFile(t, certPath)
	pki := &trustSet{corpCAPath: certPath, corpKey: keyPath, corpCA: corp, corpPool: x509.NewCertPool()}
	pki.corpPool.AddCert(corp)

	pki.origin = testpki.MustIssue(t, testpki.Spec{CommonName: "egressd test origin root", Organization: []string{"egressd tests"}, IsCA: true})
	pki.originRoot = pki.origin.Cert
	pki.originPool = testpki.Pool(pki.originRoot)
	pki.originRootPath = testpki.WritePEM(t, filepath.Join(dir, "origin-root.pem"), pki.origin.CertBlock())
	return pki
}

// leafSpec describes an origin certificate; zero times mean "valid now".
type leafSpec struct {
	names     []string // DNS names and IP literals
	notBefore time.Time
	notAfter  time.Time
}

// leaf issues an origin server certificate from parent (the origin root
// when nil).
func (p *trustSet) leaf(t testing.TB, spec leafSpec, parent *testpki.Cert) tls.Certificate {
	t.Helper()
	if parent == nil {
		parent = p.origin
	}
	return testpki.MustIssue(t, testpki.Spec{
		CommonName: spec.names[0], Names: spec.names,
		NotBefore: spec.notBefore, NotAfter: spec.notAfter,
		Parent: parent,
	}).TLS()
}

func readCertFile(t testing.TB, path string) *x509.Certificate {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatalf("%s: no PEM block", path)
		return nil // t may be a testing.TB whose Fatalf staticcheck cannot see stop
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return c
}

// tlsOrigin is an HTTPS origin on loopback.
type tlsOrigin struct {
	port     string
	requests atomic.Int32 // requests that reached the handler
}

// startTLSOrigin serves h over TLS with cert on 127.0.0.1. Handshake
// errors (expected in the refusal tests) are not printed.
func startTLSOrigin(t testing.TB, cert tls.Certificate, h http.Handler) *tlsOrigin {
	t.Helper()
	return startTLSOriginConfig(t, &tls.Config{Certificates: []tls.Certificate{cert}}, h)
}

// startTLSOriginConfig is startTLSOrigin with a caller's server config.
func startTLSOriginConfig(t testing.TB, cfg *tls.Config, h http.Handler) *tlsOrigin {
	t.Helper()
	o := &tlsOrigin{}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		o.requests.Add(1)
		h.ServeHTTP(w, r)
	}))
	srv.TLS = cfg.Clone()
	srv.TLS.NextProtos = []string{"http/1.1"}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	_, o.port, _ = net.SplitHostPort(srv.Listener.Addr().String())
	return o
}

// certCounter is the inspector's Observer in tests: it counts minted
// certificates and cache hits and misses.
type certCounter struct {
	mints, hits, misses atomic.Int64
	// mintDelay stalls each mint before its leaf reaches the cache (the
	// inspector reports MintDuration first), widening the window in which
	// a second caller would mint again if nothing made it wait.
	mintDelay time.Duration
}

func (c *certCounter) MintDuration(time.Duration) {
	c.mints.Add(1)
	time.Sleep(c.mintDelay)
}
func (c *certCounter) CacheHit()     { c.hits.Add(1) }
func (c *certCounter) CacheMiss()    { c.misses.Add(1) }
func (c *certCounter) CacheSize(int) {}

// originNames are the fake names an inspecting test proxy resolves to
// 127.0.0.1.
var originNames = []string{
	"api.origin.test", "spliced.origin.test", "burst.origin.test", "echo.origin.test",
	"expired.origin.test", "wrongname.origin.test", "untrusted.origin.test",
}

// withInspection gives tenant demo the inspection settings ti and the
// proxy an inspector built from pki, counting its events in a fresh
// certCounter (p.certs), and resolves originNames to loopback. Options
// after it may edit the tlsinspect section (withInspectConfig), swap the
// counter (withCertCounter) or the resolver. A withPolicy must come
// before it: it replaces the tenant whose settings this one sets.
func withInspection(pki *trustSet, ti acl.TLSInspectionConfig) proxyOption {
	return func(b *proxyBuild) {
		b.inspect = &tlsinspect.Config{CACert: pki.corpCAPath, CAKey: pki.corpKey, UpstreamRoots: []string{pki.originRootPath}}
		b.pki, b.certs = pki, &certCounter{}
		b.acl.Tenants[0].TLSInspection = ti
		b.deps.Resolver = loopbackResolver(originNames...)
	}
}

// withInspectConfig edits the tlsinspect section withInspection set.
func withInspectConfig(f func(*tlsinspect.Config)) proxyOption {
	return func(b *proxyBuild) { f(b.inspect) }
}

// withCertCounter makes c the inspector's Observer.
func withCertCounter(c *certCounter) proxyOption {
	return func(b *proxyBuild) { b.certs = c }
}

// loadInspector builds the inspector withInspection asked for.
func (b *proxyBuild) loadInspector() {
	b.t.Helper()
	insp, err := tlsinspect.Load(*b.inspect, b.certs)
	if err != nil {
		b.t.Fatalf("tlsinspect.Load: %v", err)
	}
	b.deps.Inspector = insp
}

// tlsVia runs a TLS client handshake with sni through a CONNECT tunnel
// to target, trusting roots and offering alpn (http/1.1 when none); sni
// "" sends no server_name at all. The returned conn is nil on error.
func tlsVia(proxyAddr, target, sni string, roots *x509.CertPool, alpn ...string) (*tls.Conn, error) {
	if len(alpn) == 0 {
		alpn = []string{"http/1.1"}
	}
	c, br, err := openTunnel(proxyAddr, target)
	if err != nil {
		return nil, err
	}
	if br.Buffered() > 0 {
		c.Close()
		return nil, errors.New("proxy sent bytes after the CONNECT response")
	}
	cfg := &tls.Config{ServerName: sni, RootCAs: roots, NextProtos: alpn}
	if sni == "" {
		// crypto/tls will not verify without a name, and setting one
		// would send it as SNI: verify the chain here and leave the
		// SAN check to the caller.
		cfg.InsecureSkipVerify = true
		cfg.VerifyConnection = func(cs tls.ConnectionState) error {
			inter := x509.NewCertPool()
			for _, c := range cs.PeerCertificates[1:] {
				inter.AddCert(c)
			}
			_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter})
			return err
		}
	}
	tc := tls.Client(c, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
	defer cancel()
	if err := tc.HandshakeContext(ctx); err != nil {
		c.Close()
		return nil, fmt.Errorf("TLS handshake with %s through the tunnel: %w", sni, err)
	}
	return tc, nil
}

// accessField renders an access-log field the way the JSON log would, so
// comparisons do not depend on the observer's Go types.
func accessField(e map[string]any, k string) string {
	v, ok := e[k]
	if !ok {
		return "<absent>"
	}
	return fmt.Sprint(v)
}

// waitKind waits for the access line of kind for host and path; kind or
// path "" matches any.
func (p *testProxy) waitKind(t testing.TB, kind, host, path string) map[string]any {
	t.Helper()
	return p.waitAccess(t, kind+" "+host+path, func(e map[string]any) bool {
		return (kind == "" || accessField(e, "kind") == kind) && accessField(e, "host") == host &&
			(path == "" || accessField(e, "path") == path)
	})
}

// checkAccessFields compares selected access-log fields; "<absent>"
// wants the field left out.
func checkAccessFields(t testing.TB, e map[string]any, want map[string]string) {
	t.Helper()
	for k, w := range want {
		if got := accessField(e, k); got != w {
			t.Errorf("access log %s = %q, want %q (line %v)", k, got, w, e)
		}
	}
}
