package load

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/egressd/egressd/internal/testpki"
)

// MaxColdHosts is how many loopback addresses (127.0.0.2 upwards) the origin
// certificate covers for the MITM cold-cache phase.
const MaxColdHosts = 250

// OriginCertificate makes a self-signed ECDSA certificate for the origin,
// valid for localhost, 127.0.0.1 and the cold-cache addresses. It is its own
// root: clients trust it through Origin.Roots, and a proxy that verifies
// upstream certificates can be given the PEM written by WriteCertificate.
func OriginCertificate() (tls.Certificate, error) {
	names := []string{"localhost", "127.0.0.1", "::1"}
	for i := range MaxColdHosts {
		names = append(names, coldHostIP(i).String())
	}
	return selfSigned("egressd-bench origin", names)
}

// NewCA makes a self-signed CA for a TLS-inspecting reference proxy in the
// bench (goproxybase's MITM variant and its tests).
func NewCA() (tls.Certificate, error) {
	return selfSigned("egressd-bench inspection CA", nil)
}

// selfSigned is a CA that may also serve TLS itself, valid for 30 days so a
// long bench run never outlives it.
func selfSigned(cn string, names []string) (tls.Certificate, error) {
	c, err := testpki.Issue(testpki.Spec{
		CommonName:  cn,
		Names:       names,
		NotAfter:    time.Now().Add(30 * 24 * time.Hour),
		IsCA:        true,
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	if err != nil {
		return tls.Certificate{}, err
	}
	return c.TLS(), nil
}

// coldHostIP is the i-th cold-cache address: 127.0.0.2, 127.0.0.3, ...
func coldHostIP(i int) net.IP { return net.IPv4(127, 0, 0, byte(2+i)) }

// WriteCertificate writes cert and key as PEM files, the key readable by its
// owner only.
func WriteCertificate(cert tls.Certificate, certFile, keyFile string) error {
	keyDER, err := x509.MarshalPKCS8PrivateKey(cert.PrivateKey)
	if err != nil {
		return fmt.Errorf("marshal key: %w", err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]})
	if err := os.WriteFile(certFile, certPEM, 0o644); err != nil {
		return fmt.Errorf("write certificate: %w", err)
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
		return fmt.Errorf("write key: %w", err)
	}
	return nil
}

// ReadCertPool loads PEM certificates from a file, for --mitm-ca.
func ReadCertPool(file string) (*x509.CertPool, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("read CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("read CA %s: no PEM certificate found", file)
	}
	return pool, nil
}

// LoadCertificate reads a PEM certificate and key written by WriteCertificate.
func LoadCertificate(certFile, keyFile string) (tls.Certificate, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("load certificate: %w", err)
	}
	return cert, nil
}
