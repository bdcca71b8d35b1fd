package inject

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"
	"go.uber.org/zap/zaptest"

	"github.com/egressd/egressd/internal/testpki"
)

// The in-cluster name the API server dials (service.namespace.svc).
const serviceDNS = "egressd-inject.egressd-inject.svc"

// testCA issues serving certificates as cert-manager's CA Issuer would.
type testCA struct {
	*testpki.Cert
	pool *x509.CertPool
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	root := testpki.NewRoot(t, "egressd-inject test CA")
	return &testCA{Cert: root, pool: testpki.Pool(root.Cert)}
}

// writeLeaf issues a leaf with serial and writes it the way the kubelet
// updates a Secret volume: new files renamed into place.
func (ca *testCA) writeLeaf(t *testing.T, dir string, serial int64, notAfter time.Time) {
	t.Helper()
	leaf := testpki.MustIssue(t, testpki.Spec{
		CommonName: serviceDNS,
		Names:      []string{serviceDNS, "127.0.0.1"},
		Serial:     big.NewInt(serial),
		NotBefore:  time.Now().Add(-time.Minute),
		NotAfter:   notAfter,
		Parent:     ca.Cert,
	})
	keyPEM, err := leaf.KeyPEM()
	if err != nil {
		t.Fatal(err)
	}
	writeFiles(t, dir, leaf.CertPEM(), keyPEM)
}

// writeFiles replaces tls.crt and tls.key and moves their mtime forward, so
// the change is visible even on a filesystem with coarse timestamps.
func writeFiles(t *testing.T, dir string, certPEM, keyPEM []byte) {
	t.Helper()
	bump := time.Now().Add(time.Duration(len(certPEM)) * time.Millisecond)
	if fi, err := os.Stat(filepath.Join(dir, "tls.crt")); err == nil && !bump.After(fi.ModTime()) {
		bump = fi.ModTime().Add(time.Second)
	}
	for name, data := range map[string][]byte{"tls.crt": certPEM, "tls.key": keyPEM} {
		tmp := filepath.Join(dir, "."+name+".tmp")
		if err := os.WriteFile(tmp, data, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(tmp, bump, bump); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
}

// checkLeaks verifies, after every other cleanup (including the server's
// stop), that the test left no goroutine behind.
func checkLeaks(t *testing.T) {
	t.Helper()
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) })
}

// runningServer is serve() on loopback listeners with its stop handle.
type runningServer struct {
	s         *Server
	reg       *prometheus.Registry
	webURL    string
	adminURL  string
	cancel    context.CancelFunc
	done      chan error
	tlsClient func() *http.Client
}

func startServer(t *testing.T, dir string, ca *testCA, delay time.Duration) *runningServer {
	t.Helper()
	cfg := testConfig()
	cfg.TLS = TLSConfig{CertFile: filepath.Join(dir, "tls.crt"), KeyFile: filepath.Join(dir, "tls.key")}
	log := zaptest.NewLogger(t)
	reg := prometheus.NewRegistry()
	s, err := New(cfg, log, reg)
	if err != nil {
		t.Fatal(err)
	}
	certs, err := newCertReloader(cfg.TLS, log, s.metrics)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	adminLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	rs := &runningServer{
		s: s, reg: reg, cancel: cancel, done: make(chan error, 1),
		webURL:   "https://" + ln.Addr().String(),
		adminURL: "http://" + adminLn.Addr().String(),
		// A fresh client per call forces a fresh handshake, which is what
		// the API server does after a certificate rotation closes nothing.
		tlsClient: func() *http.Client {
			tr := &http.Transport{
				TLSClientConfig:   &tls.Config{RootCAs: ca.pool, ServerName: serviceDNS, MinVersion: tls.VersionTLS12},
				DisableKeepAlives: true,
				ForceAttemptHTTP2: true,
			}
			return &http.Client{Transport: tr, Timeout: 5 * time.Second}
		},
	}
	go func() {
		rs.done <- s.serve(ctx, runDeps{certs: certs, reg: reg, ln: ln, adminLn: adminLn,
			shutdownDelay: delay, shutdownTimeout: 2 * time.Second})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-rs.done:
		case <-time.After(5 * time.Second):
			t.Error("serve did not return after cancel")
		}
	})
	return rs
}

// servedSerial posts a review over a fresh TLS connection and returns the
// serial of the certificate the server presented.
func servedSerial(t *testing.T, rs *runningServer) int64 {
	t.Helper()
	resp, err := rs.tlsClient().Post(rs.webURL+"/mutate", "application/json", strings.NewReader(reviewJSON("uid-tls", "CREATE", plainPod)))
	if err != nil {
		t.Fatalf("POST over TLS: %v", err)
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || resp.TLS == nil || len(resp.TLS.PeerCertificates) == 0 {
		t.Fatalf("status %d tls %v", resp.StatusCode, resp.TLS)
	}
	return resp.TLS.PeerCertificates[0].SerialNumber.Int64()
}

func TestServeHTTPSAndReloadCertificate(t *testing.T) {
	checkLeaks(t)
	dir := t.TempDir()
	ca := newTestCA(t)
	ca.writeLeaf(t, dir, 1, time.Now().Add(time.Hour))
	rs := startServer(t, dir, ca, 0)

	// Round trip: the real server, TLS verified against the test CA.
	code, review := postReview(t, rs.tlsClient(), rs.webURL, reviewJSON("uid-tls", "CREATE", plainPod))
	if code != 200 || review.Response == nil || review.Response.UID != "uid-tls" || len(review.Response.Patch) == 0 {
		t.Fatalf("status %d response %+v: want a patch for uid-tls", code, review.Response)
	}
	pod := decodePodStrict(t, applyPatch(t, plainPod, review.Response.Patch))
	if got := envList(pod.Spec.Containers[0]); len(got) != 10 || got[0] != "HTTP_PROXY="+testProxy {
		t.Errorf("env after TLS round trip %q", got)
	}
	if got := servedSerial(t, rs); got != 1 {
		t.Fatalf("serial %d, want 1", got)
	}

	// Rotation: the next handshake presents the new certificate.
	notAfter := time.Now().Add(2 * time.Hour).Truncate(time.Second)
	ca.writeLeaf(t, dir, 2, notAfter)
	if got := servedSerial(t, rs); got != 2 {
		t.Fatalf("serial after rotation %d, want 2", got)
	}
	if got := testutil.ToFloat64(rs.s.metrics.certReloads.WithLabelValues("success")); got != 1 {
		t.Errorf("cert reloads{success} = %v, want 1", got)
	}
	if got := testutil.ToFloat64(rs.s.metrics.certNotAfter); got != float64(notAfter.Unix()) {
		t.Errorf("cert not_after = %v, want %d", got, notAfter.Unix())
	}

	// A broken write keeps the last good certificate and is tried once.
	writeFiles(t, dir, []byte("not a certificate"), []byte("not a key"))
	for range 2 {
		if got := servedSerial(t, rs); got != 2 {
			t.Fatalf("serial after a broken write %d, want 2 (the last good one)", got)
		}
	}
	if got := testutil.ToFloat64(rs.s.metrics.certReloads.WithLabelValues("error")); got != 1 {
		t.Errorf("cert reloads{error} = %v, want 1", got)
	}

	// Recovery after the broken write.
	ca.writeLeaf(t, dir, 3, time.Now().Add(time.Hour))
	if got := servedSerial(t, rs); got != 3 {
		t.Fatalf("serial after recovery %d, want 3", got)
	}

	// The admin port exposes the caller's registry, health included.
	resp, err := http.Get(rs.adminURL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`egressd_inject_pods_total{result="mutated"} 6`, `egressd_inject_cert_reloads_total{result="success"} 2`} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	http.DefaultClient.CloseIdleConnections()
}

func TestServeDrainsOnCancel(t *testing.T) {
	checkLeaks(t)
	dir := t.TempDir()
	ca := newTestCA(t)
	ca.writeLeaf(t, dir, 1, time.Now().Add(time.Hour))
	const delay = time.Second
	rs := startServer(t, dir, ca, delay)
	status := func(client *http.Client, url string) int {
		resp, err := client.Get(url)
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	plain := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 2 * time.Second}
	ready := func() int { return status(rs.tlsClient(), rs.webURL+"/healthz") }
	live := func() int { return status(plain, rs.adminURL+"/healthz") }
	if r, l := ready(), live(); r != 200 || l != 200 {
		t.Fatalf("readiness %d liveness %d, want 200 and 200", r, l)
	}

	start := time.Now()
	rs.cancel()
	// During shutdown_delay the pod still answers but reports not ready,
	// so the endpoints controller removes it before it goes away.
	deadline := time.Now().Add(delay / 2)
	for ready() != 503 {
		if time.Now().After(deadline) {
			t.Fatal("readiness did not turn 503 during shutdown_delay")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got := live(); got != 200 {
		t.Errorf("liveness during drain %d, want 200: a draining pod must not be restarted", got)
	}
	if got := servedSerial(t, rs); got != 1 {
		t.Errorf("review during drain served serial %d", got)
	}
	select {
	case err := <-rs.done:
		if err != nil {
			t.Errorf("serve returned %v, want nil after cancel", err)
		}
		if elapsed := time.Since(start); elapsed < delay {
			t.Errorf("serve returned after %v, before shutdown_delay %v", elapsed, delay)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("serve did not return")
	}
	rs.done <- nil // for the cleanup's receive
	if r, l := ready(), live(); r != 0 || l != 0 {
		t.Errorf("ports still answer after shutdown: readiness %d liveness %d", r, l)
	}
}

func TestRunFailsWithoutCertificate(t *testing.T) {
	cfg := testConfig()
	dir := t.TempDir()
	cfg.TLS = TLSConfig{CertFile: filepath.Join(dir, "tls.crt"), KeyFile: filepath.Join(dir, "tls.key")}
	// Listen addresses are never reached: the certificate is checked first.
	err := Run(context.Background(), cfg, zaptest.NewLogger(t), prometheus.NewRegistry())
	want := "load serving certificate: stat: stat " + cfg.TLS.CertFile + ": no such file or directory"
	if err == nil || err.Error() != want {
		t.Errorf("Run: %v\nwant %s", err, want)
	}
}

func TestRunFailsOnBusyPort(t *testing.T) {
	checkLeaks(t)
	dir := t.TempDir()
	newTestCA(t).writeLeaf(t, dir, 1, time.Now().Add(time.Hour))
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	cfg := testConfig()
	cfg.TLS = TLSConfig{CertFile: filepath.Join(dir, "tls.crt"), KeyFile: filepath.Join(dir, "tls.key")}
	cfg.Listen = "127.0.0.1:0"
	cfg.AdminListen = busy.Addr().String()
	err = Run(context.Background(), cfg, zaptest.NewLogger(t), prometheus.NewRegistry())
	if err == nil || !strings.HasPrefix(err.Error(), "listen admin "+busy.Addr().String()+": listen tcp "+busy.Addr().String()+": bind: address already in use") {
		t.Errorf("Run: %v, want a listen admin error", err)
	}
}
