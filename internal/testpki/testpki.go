// Package testpki issues the certificates tests and the bench need: roots,
// intermediates and server leaves on loopback names, written as PEM or
// served through crypto/tls. It is the one certificate generator outside
// tlsinspect's own CA code, so every suite builds its trust world the same
// way. Keys are P-256 unless a spec supplies one; nothing here is fit to
// secure anything but a test.
package testpki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/netip"
	"os"
	"testing"
	"time"
)

// Spec describes one certificate. Zero fields get defaults that suit a
// test running now: valid from an hour ago for a day, a random serial, a
// fresh P-256 key, and the key usages of a CA or of a TLS server.
type Spec struct {
	CommonName   string
	Organization []string
	// Names are the subject alternative names: IP literals become IP
	// SANs, anything else a DNS SAN.
	Names     []string
	NotBefore time.Time
	NotAfter  time.Time
	IsCA      bool
	// KeyUsage defaults to CertSign|CRLSign|DigitalSignature for a CA and
	// DigitalSignature for a leaf.
	KeyUsage x509.KeyUsage
	// ExtKeyUsage defaults to none for a CA and ServerAuth for a leaf.
	ExtKeyUsage []x509.ExtKeyUsage
	Serial      *big.Int      // random 120-bit when nil
	Key         crypto.Signer // fresh P-256 when nil
	Parent      *Cert         // self-signed when nil
}

// Cert is an issued certificate with its private key.
type Cert struct {
	Cert *x509.Certificate
	Key  crypto.Signer
}

// Issue creates the certificate s describes.
func Issue(s Spec) (*Cert, error) {
	key := s.Key
	if key == nil {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, fmt.Errorf("testpki: generate key: %w", err)
		}
		key = k
	}
	now := time.Now()
	if s.NotBefore.IsZero() {
		s.NotBefore = now.Add(-time.Hour)
	}
	if s.NotAfter.IsZero() {
		s.NotAfter = now.Add(24 * time.Hour)
	}
	if s.Serial == nil {
		n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
		if err != nil {
			return nil, fmt.Errorf("testpki: serial: %w", err)
		}
		s.Serial = n.Add(n, big.NewInt(1)) // never zero
	}
	tmpl := &x509.Certificate{
		SerialNumber:          s.Serial,
		Subject:               pkix.Name{CommonName: s.CommonName, Organization: s.Organization},
		NotBefore:             s.NotBefore,
		NotAfter:              s.NotAfter,
		BasicConstraintsValid: s.IsCA,
		IsCA:                  s.IsCA,
		KeyUsage:              s.KeyUsage,
		ExtKeyUsage:           s.ExtKeyUsage,
	}
	switch {
	case tmpl.KeyUsage != 0:
	case s.IsCA:
		tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature
	default:
		tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	}
	if tmpl.ExtKeyUsage == nil && !s.IsCA {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	}
	for _, n := range s.Names {
		if a, err := netip.ParseAddr(n); err == nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, a.AsSlice())
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	parent, parentKey := tmpl, key
	if s.Parent != nil {
		parent, parentKey = s.Parent.Cert, s.Parent.Key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, key.Public(), parentKey)
	if err != nil {
		return nil, fmt.Errorf("testpki: create %q: %w", s.CommonName, err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("testpki: parse %q: %w", s.CommonName, err)
	}
	return &Cert{Cert: c, Key: key}, nil
}

// MustIssue is Issue for tests: an error fails t.
func MustIssue(t testing.TB, s Spec) *Cert {
	t.Helper()
	c, err := Issue(s)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// NewRoot issues a self-signed CA with the default validity.
func NewRoot(t testing.TB, cn string) *Cert {
	t.Helper()
	return MustIssue(t, Spec{CommonName: cn, IsCA: true})
}

// Intermediate issues a CA signed by c.
func (c *Cert) Intermediate(t testing.TB, cn string) *Cert {
	t.Helper()
	return MustIssue(t, Spec{CommonName: cn, IsCA: true, Parent: c})
}

// Leaf issues a TLS server certificate for names (DNS names or IP
// literals; the first is also the common name) signed by c.
func (c *Cert) Leaf(t testing.TB, names ...string) *Cert {
	t.Helper()
	cn := ""
	if len(names) > 0 {
		cn = names[0]
	}
	return MustIssue(t, Spec{CommonName: cn, Names: names, Parent: c})
}

// TLS is c as a crypto/tls certificate, followed by chain (intermediates,
// leaf first order).
func (c *Cert) TLS(chain ...*Cert) tls.Certificate {
	tc := tls.Certificate{Certificate: [][]byte{c.Cert.Raw}, PrivateKey: c.Key, Leaf: c.Cert}
	for _, x := range chain {
		tc.Certificate = append(tc.Certificate, x.Cert.Raw)
	}
	return tc
}

// CertBlock is c's certificate as a PEM block.
func (c *Cert) CertBlock() *pem.Block {
	return &pem.Block{Type: "CERTIFICATE", Bytes: c.Cert.Raw}
}

// CertPEM is c's certificate PEM-encoded.
func (c *Cert) CertPEM() []byte { return pem.EncodeToMemory(c.CertBlock()) }

// KeyPEM is c's private key PEM-encoded as PKCS#8.
func (c *Cert) KeyPEM() ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(c.Key)
	if err != nil {
		return nil, fmt.Errorf("testpki: marshal key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// KeyBlock is key as a PKCS#8 PEM block; an error fails t.
func KeyBlock(t testing.TB, key crypto.Signer) *pem.Block {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return &pem.Block{Type: "PRIVATE KEY", Bytes: der}
}

// WriteFiles writes c's certificate (mode 0644) and key (0600) as PEM.
func (c *Cert) WriteFiles(certFile, keyFile string) error {
	keyPEM, err := c.KeyPEM()
	if err != nil {
		return err
	}
	if err := os.WriteFile(certFile, c.CertPEM(), 0o644); err != nil {
		return fmt.Errorf("testpki: write certificate: %w", err)
	}
	if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
		return fmt.Errorf("testpki: write key: %w", err)
	}
	return nil
}

// WritePEM writes blocks to path (mode 0600) and returns path; an error
// fails t. Tests use it for well-formed files and for deliberately odd
// ones (a key in the certificate file, two keys, a foreign block type).
func WritePEM(t testing.TB, path string, blocks ...*pem.Block) string {
	t.Helper()
	var data []byte
	for _, b := range blocks {
		data = append(data, pem.EncodeToMemory(b)...)
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// Pool is a CertPool holding certs.
func Pool(certs ...*x509.Certificate) *x509.CertPool {
	p := x509.NewCertPool()
	for _, c := range certs {
		p.AddCert(c)
	}
	return p
}
