package tlsinspect

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"net/netip"
	"time"
)

// maxCommonNameLen is ub-common-name from RFC 5280 Appendix A; longer hosts
// are named in the SAN only, which is all modern clients read anyway.
const maxCommonNameLen = 64

// randomSerial returns a positive 128-bit serial from crypto/rand. CA/B
// Baseline Requirements ask for at least 64 bits of entropy; predictable
// serials (goproxy uses math/rand) enable chosen-prefix collision attacks.
func randomSerial() (*big.Int, error) {
	var b [16]byte
	for {
		if _, err := rand.Read(b[:]); err != nil {
			return nil, fmt.Errorf("serial: %w", err)
		}
		if n := new(big.Int).SetBytes(b[:]); n.Sign() > 0 {
			return n, nil
		}
	}
}

// mint issues a leaf for host (already normalized) valid from
// now-LeafBackdate to now+validity, clamped to the CA's own validity so a
// leaf never outlives its issuer. Each leaf gets a fresh P-256 key: keygen
// costs tens of microseconds and keeps one leaked leaf key from covering
// every host.
func (a *authority) mint(host string, now time.Time, validity time.Duration) (*tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("mint %s: generate key: %w", host, err)
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, fmt.Errorf("mint %s: %w", host, err)
	}
	notBefore := now.Add(-LeafBackdate)
	if notBefore.Before(a.cert.NotBefore) {
		notBefore = a.cert.NotBefore
	}
	notAfter := now.Add(validity)
	if notAfter.After(a.cert.NotAfter) {
		notAfter = a.cert.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		// crypto/x509 copies the parent's SubjectKeyId when it has one;
		// this covers CAs without it.
		AuthorityKeyId: a.keyID,
	}
	if len(host) <= maxCommonNameLen {
		tmpl.Subject = pkix.Name{CommonName: host}
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		tmpl.IPAddresses = append(tmpl.IPAddresses, ip.AsSlice())
	} else {
		tmpl.DNSNames = []string{host}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, a.cert, key.Public(), a.key)
	if err != nil {
		return nil, fmt.Errorf("mint %s: sign: %w", host, err)
	}
	// Parsing once here saves crypto/tls from parsing on every handshake
	// and gives the cache NotAfter.
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("mint %s: parse: %w", host, err)
	}
	chain := make([][]byte, 0, 1+len(a.chain))
	chain = append(chain, der)
	chain = append(chain, a.chain...)
	return &tls.Certificate{Certificate: chain, PrivateKey: key, Leaf: leaf}, nil
}
