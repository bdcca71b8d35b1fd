package proxy_test

// Helpers for the TLS inspection end-to-end tests: two separate PKIs per
// test (egressd's corporate inspection CA, and the root that signs the
// loopback origins' own certificates), HTTPS origins on loopback, an
// Observer that counts mints, and clients that speak TLS through a
// CONNECT tunnel. Identifiers carry the insp prefix because other suites
// share this package.

import (
	"bufio"
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
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/egressd/egressd/acl"
	"github.com/egressd/egressd/internal/testpki"
	"github.com/egressd/egressd/proxy"
	"github.com/egressd/egressd/tlsinspect"
)

// inspPKI is one test's trust world.
type inspPKI struct {
	corpCAPath string // the inspection CA workloads trust (curl --cacert)
	corpKey    string
	corpCA     *x509.Certificate
	corpPool   *x509.CertPool

	originRootPath string // egressd's extra upstream_roots entry
	origin         *testpki.Cert
	originRoot     *x509.Certificate // origin.Cert
	originPool     *x509.CertPool
}

func newInspPKI(t testing.TB) *inspPKI {
	t.Helper()
	dir := t.TempDir()
	certPath, keyPath, err := tlsinspect.InitCA(filepath.Join(dir, "corp"), time.Now())
	if err != nil {
		t.Fatalf("init corporate CA: %v", err)
	}
	corp := inspReadCert(t, certPath)
	pki := &inspPKI{corpCAPath: certPath, corpKey: keyPath, corpCA: corp, corpPool: x509.NewCertPool()}
	pki.corpPool.AddCert(corp)

	pki.origin = testpki.MustIssue(t, testpki.Spec{CommonName: "egressd test origin root", Organization: []string{"egressd tests"}, IsCA: true})
	pki.originRoot = pki.origin.Cert
	pki.originPool = testpki.Pool(pki.originRoot)
	pki.originRootPath = testpki.WritePEM(t, filepath.Join(dir, "origin-root.pem"), pki.origin.CertBlock())
	return pki
}

// inspLeafSpec describes an origin certificate; zero times mean "valid now".
type inspLeafSpec struct {
	names     []string // DNS names and IP literals
	notBefore time.Time
	notAfter  time.Time
}

// leaf issues an origin server certificate from parent (the origin root
// when nil).
func (p *inspPKI) leaf(t testing.TB, spec inspLeafSpec, parent *testpki.Cert) tls.Certificate {
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

func inspReadCert(t testing.TB, path string) *x509.Certificate {
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

// inspOrigin is an HTTPS origin on loopback.
type inspOrigin struct {
	port     string
	requests atomic.Int32 // requests that reached the handler
}

// startInspOrigin serves h over TLS with cert on 127.0.0.1. Handshake
// errors (expected in the refusal tests) are not printed.
func startInspOrigin(t testing.TB, cert tls.Certificate, h http.Handler) *inspOrigin {
	t.Helper()
	return startInspOriginTLS(t, &tls.Config{Certificates: []tls.Certificate{cert}}, h)
}

// startInspOriginTLS is startInspOrigin with a caller's server config.
func startInspOriginTLS(t testing.TB, cfg *tls.Config, h http.Handler) *inspOrigin {
	t.Helper()
	o := &inspOrigin{}
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

// inspCounter counts the inspector's events; it is the Observer the
// proxy would adapt to Prometheus.
type inspCounter struct {
	mints, hits, misses atomic.Int64
	// mintDelay stalls each mint before its leaf reaches the cache (the
	// inspector reports MintDuration first), widening the window in which
	// a second caller would mint again if nothing made it wait.
	mintDelay time.Duration
}

func (c *inspCounter) MintDuration(time.Duration) {
	c.mints.Add(1)
	time.Sleep(c.mintDelay)
}
func (c *inspCounter) CacheHit()     { c.hits.Add(1) }
func (c *inspCounter) CacheMiss()    { c.misses.Add(1) }
func (c *inspCounter) CacheSize(int) {}

// inspSetup is a running proxy with inspection, plus what the test needs
// to talk to it.
type inspSetup struct {
	*testProxy
	pki *inspPKI
	obs *inspCounter
}

// inspNames are the fake names every inspection proxy resolves to 127.0.0.1.
var inspNames = []string{
	"api.origin.test", "spliced.origin.test", "burst.origin.test", "echo.origin.test",
	"expired.origin.test", "wrongname.origin.test", "untrusted.origin.test",
}

// startInspProxy runs a proxy whose tenant demo has inspection settings
// ti, with egressd's inspector built from pki. tweak edits the
// tlsinspect section before Load; aclTweak edits the policy further.
func startInspProxy(t testing.TB, pki *inspPKI, ti acl.TLSInspectionConfig, tweak func(*tlsinspect.Config), aclTweak func(*acl.Config)) *inspSetup {
	t.Helper()
	return startInspProxyObs(t, pki, ti, tweak, aclTweak, &inspCounter{})
}

// startInspProxyObs is startInspProxy with a caller's observer and more
// proxy options.
func startInspProxyObs(t testing.TB, pki *inspPKI, ti acl.TLSInspectionConfig, tweak func(*tlsinspect.Config), aclTweak func(*acl.Config), obs *inspCounter, opts ...proxyOption) *inspSetup {
	t.Helper()
	cfg := tlsinspect.Config{CACert: pki.corpCAPath, CAKey: pki.corpKey, UpstreamRoots: []string{pki.originRootPath}}
	if tweak != nil {
		tweak(&cfg)
	}
	insp, err := tlsinspect.Load(cfg, obs)
	if err != nil {
		t.Fatalf("tlsinspect.Load: %v", err)
	}
	p := startProxy(t, append([]proxyOption{
		withResolver(loopbackResolver(inspNames...)),
		withACL(func(c *acl.Config) {
			c.Tenants[0].TLSInspection = ti
			if aclTweak != nil {
				aclTweak(c)
			}
		}),
		func(_ testing.TB, _ *proxy.Config, d *proxy.Deps) { d.Inspector = insp },
	}, opts...)...)
	return &inspSetup{testProxy: p, pki: pki, obs: obs}
}

// inspTunnel opens CONNECT target through the proxy and returns the raw
// conn after the 200. It returns errors instead of failing so goroutines
// can use it.
func inspTunnel(proxyAddr, target string) (net.Conn, *bufio.Reader, error) {
	c, err := net.DialTimeout("tcp", proxyAddr, ioTimeout)
	if err != nil {
		return nil, nil, fmt.Errorf("dial proxy: %w", err)
	}
	c.SetDeadline(time.Now().Add(ioTimeout))
	br := bufio.NewReader(c)
	fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", target, target)
	resp, err := http.ReadResponse(br, &http.Request{Method: "CONNECT"})
	if err != nil {
		c.Close()
		return nil, nil, fmt.Errorf("CONNECT %s: %w", target, err)
	}
	if resp.StatusCode != http.StatusOK {
		c.Close()
		return nil, nil, fmt.Errorf("CONNECT %s: status %d", target, resp.StatusCode)
	}
	return c, br, nil
}

// inspTLSVia runs a TLS client handshake with sni through a CONNECT
// tunnel to target, trusting roots; sni "" sends no server_name at all.
// The returned conn is nil on error.
func inspTLSVia(proxyAddr, target, sni string, roots *x509.CertPool) (*tls.Conn, error) {
	return inspTLSViaALPN(proxyAddr, target, sni, roots, []string{"http/1.1"})
}

// inspTLSViaALPN is inspTLSVia offering alpn.
func inspTLSViaALPN(proxyAddr, target, sni string, roots *x509.CertPool, alpn []string) (*tls.Conn, error) {
	c, br, err := inspTunnel(proxyAddr, target)
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

// inspCurl runs curl through the proxy. -q skips any ~/.curlrc and the
// environment is emptied so no *_proxy variable can redirect it.
func inspCurl(t testing.TB, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	if _, err := os.Stat("/usr/bin/curl"); err != nil {
		t.Skipf("curl not available: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "/usr/bin/curl", append([]string{"-q", "--silent", "--show-error", "--max-time", "15"}, args...)...)
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + t.TempDir()}
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err = cmd.Run()
	return out.String(), errb.String(), err
}

// inspField renders an access-log field the way the JSON log would, so
// comparisons do not depend on the observer's Go types.
func inspField(e map[string]any, k string) string {
	v, ok := e[k]
	if !ok {
		return "<absent>"
	}
	return fmt.Sprint(v)
}

// waitKind waits for the access line of kind for host (and path, unless "").
func (s *inspSetup) waitKind(t testing.TB, kind, host, path string) map[string]any {
	t.Helper()
	return s.waitAccess(t, kind+" "+host+path, func(e map[string]any) bool {
		return inspField(e, "kind") == kind && inspField(e, "host") == host &&
			(path == "" || inspField(e, "path") == path)
	})
}

// inspCheckFields compares selected access-log fields.
func inspCheckFields(t testing.TB, e map[string]any, want map[string]string) {
	t.Helper()
	for k, w := range want {
		if got := inspField(e, k); got != w {
			t.Errorf("access log %s = %q, want %q (line %v)", k, got, w, e)
		}
	}
}
