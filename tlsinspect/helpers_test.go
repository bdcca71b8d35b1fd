package tlsinspect

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// t0 is the fixed "now" of tests that control the clock.
var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// certSpec describes a test certificate; zero fields get CA-friendly defaults.
type certSpec struct {
	cn        string
	key       crypto.Signer // generated (P-256) when nil
	notBefore time.Time
	notAfter  time.Time
	notCA     bool
	keyUsage  x509.KeyUsage
	extUsage  []x509.ExtKeyUsage
	dnsNames  []string
	ips       []net.IP
	parent    *x509.Certificate // self-signed when nil
	parentKey crypto.Signer
}

type testCert struct {
	cert *x509.Certificate
	key  crypto.Signer
}

func newCert(t testing.TB, s certSpec) testCert {
	t.Helper()
	key := s.key
	if key == nil {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		key = k
	}
	// Defaults cover both the fixed test clock and the wall clock, as
	// some tests go through Load (time.Now) and others through t0.
	if s.notBefore.IsZero() {
		s.notBefore = minTime(t0, time.Now()).Add(-24 * time.Hour)
	}
	if s.notAfter.IsZero() {
		s.notAfter = maxTime(t0, time.Now()).Add(365 * 24 * time.Hour)
	}
	serial, err := randomSerial()
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: s.cn},
		NotBefore:             s.notBefore,
		NotAfter:              s.notAfter,
		BasicConstraintsValid: !s.notCA,
		IsCA:                  !s.notCA,
		KeyUsage:              s.keyUsage,
		ExtKeyUsage:           s.extUsage,
		DNSNames:              s.dnsNames,
		IPAddresses:           s.ips,
	}
	if tmpl.KeyUsage == 0 {
		if s.notCA {
			tmpl.KeyUsage = x509.KeyUsageDigitalSignature
		} else {
			tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign
		}
	}
	parent, parentKey := tmpl, key
	if s.parent != nil {
		parent, parentKey = s.parent, s.parentKey
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, key.Public(), parentKey)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return testCert{cert: c, key: key}
}

func writePEM(t testing.TB, dir, name string, blocks ...*pem.Block) string {
	t.Helper()
	var data []byte
	for _, b := range blocks {
		data = append(data, pem.EncodeToMemory(b)...)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func certBlock(c *x509.Certificate) *pem.Block {
	return &pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}
}

func pkcs8Block(t testing.TB, k crypto.Signer) *pem.Block {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return &pem.Block{Type: "PRIVATE KEY", Bytes: der}
}

// caFiles writes c as ca.crt/ca.key in dir and returns a Config using them.
func caFiles(t testing.TB, dir string, c testCert) Config {
	t.Helper()
	return Config{
		CACert: writePEM(t, dir, "ca.crt", certBlock(c.cert)),
		CAKey:  writePEM(t, dir, "ca.key", pkcs8Block(t, c.key)),
	}
}

// newInspector builds an Inspector from a fresh P-256 CA with a clock the
// test controls.
func newInspector(t testing.TB, mutate func(*Config)) (*Inspector, *fakeClock, testCert, *countingObserver) {
	t.Helper()
	ca := newCert(t, certSpec{cn: "Test Inspection CA", notBefore: t0.Add(-24 * time.Hour), notAfter: t0.Add(365 * 24 * time.Hour)})
	cfg := caFiles(t, t.TempDir(), ca)
	if mutate != nil {
		mutate(&cfg)
	}
	clk := &fakeClock{now: t0}
	obs := &countingObserver{}
	insp, err := load(cfg, obs, clk.Now)
	if err != nil {
		t.Fatal(err)
	}
	return insp, clk, ca, obs
}

func poolOf(certs ...*x509.Certificate) *x509.CertPool {
	p := x509.NewCertPool()
	for _, c := range certs {
		p.AddCert(c)
	}
	return p
}

type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

type countingObserver struct {
	mints, hits, misses atomic.Int64
	size                atomic.Int64
}

func (o *countingObserver) MintDuration(time.Duration) { o.mints.Add(1) }
func (o *countingObserver) CacheHit()                  { o.hits.Add(1) }
func (o *countingObserver) CacheMiss()                 { o.misses.Add(1) }
func (o *countingObserver) CacheSize(n int)            { o.size.Store(int64(n)) }

// serverTLSCert wraps a test leaf for httptest/tls servers.
func serverTLSCert(c testCert, chain ...*x509.Certificate) tls.Certificate {
	tc := tls.Certificate{Certificate: [][]byte{c.cert.Raw}, PrivateKey: c.key, Leaf: c.cert}
	for _, x := range chain {
		tc.Certificate = append(tc.Certificate, x.Raw)
	}
	return tc
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
