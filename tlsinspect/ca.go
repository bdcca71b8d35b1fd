package tlsinspect

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/pem"
	"fmt"
	"os"
	"slices"
	"time"
)

// minRSABits is the smallest RSA CA key accepted; clients reject less.
const minRSABits = 2048

// authority is the loaded inspection CA: the only place the key lives.
type authority struct {
	cert *x509.Certificate
	key  crypto.Signer
	// keyID is the CA's key identifier, copied into each leaf's
	// AuthorityKeyId so clients with several corporate CAs pick the right one.
	keyID []byte
	// chain is what follows the leaf on the wire: the CA itself when it is
	// an intermediate, then the configured chain.
	chain [][]byte
}

// loadAuthority reads and checks the CA certificate, key and chain files.
// Every error starts with the YAML path of the file at fault.
func loadAuthority(cfg *Config, now time.Time) (*authority, error) {
	cert, err := loadCACert(cfg.CACert, now)
	if err != nil {
		return nil, err
	}
	key, err := loadKey(cfg.CAKey)
	if err != nil {
		return nil, err
	}
	if !publicKeysEqual(cert.PublicKey, key.Public()) {
		return nil, fmt.Errorf("%s.ca_key: %s: private key does not match the certificate in %s.ca_cert",
			yamlSection, cfg.CAKey, yamlSection)
	}
	a := &authority{cert: cert, key: key, keyID: cert.SubjectKeyId}
	if len(a.keyID) == 0 {
		if a.keyID, err = keyIdentifier(cert); err != nil {
			return nil, fmt.Errorf("%s.ca_cert: %s: %w", yamlSection, cfg.CACert, err)
		}
	}
	var chain []*x509.Certificate
	if cfg.Chain != "" {
		if chain, err = loadChain(cfg.Chain); err != nil {
			return nil, err
		}
	}
	// A self-signed CA is the client's trust anchor and need not be sent;
	// an intermediate must be, or clients cannot build a path. Skip it if
	// the operator already listed it first in chain.
	if !isSelfSigned(cert) && (len(chain) == 0 || !chain[0].Equal(cert)) {
		a.chain = append(a.chain, cert.Raw)
	}
	for _, c := range chain {
		a.chain = append(a.chain, c.Raw)
	}
	return a, nil
}

func loadCACert(path string, now time.Time) (*x509.Certificate, error) {
	certs, err := readCerts(path)
	if err != nil {
		return nil, fmt.Errorf("%s.ca_cert: %w", yamlSection, err)
	}
	if len(certs) > 1 {
		return nil, fmt.Errorf("%s.ca_cert: %s: holds %d certificates; put only the signing CA here and intermediates in %s.chain",
			yamlSection, path, len(certs), yamlSection)
	}
	c := certs[0]
	name := c.Subject.String()
	if !c.BasicConstraintsValid || !c.IsCA {
		return nil, fmt.Errorf("%s.ca_cert: %s: certificate %q is not a CA (basicConstraints CA:TRUE missing)",
			yamlSection, path, name)
	}
	// An absent keyUsage extension means "any use" (RFC 5280 §4.2.1.3).
	if c.KeyUsage != 0 && c.KeyUsage&x509.KeyUsageCertSign == 0 {
		return nil, fmt.Errorf("%s.ca_cert: %s: certificate %q is not a CA (keyUsage lacks keyCertSign)",
			yamlSection, path, name)
	}
	// Verifiers nest extended key usages down the chain, so a CA restricted
	// to, say, clientAuth makes every minted server leaf fail.
	if (len(c.ExtKeyUsage) > 0 || len(c.UnknownExtKeyUsage) > 0) &&
		!slices.Contains(c.ExtKeyUsage, x509.ExtKeyUsageServerAuth) &&
		!slices.Contains(c.ExtKeyUsage, x509.ExtKeyUsageAny) {
		return nil, fmt.Errorf("%s.ca_cert: %s: certificate %q has an extKeyUsage without serverAuth, so clients would reject its leaves",
			yamlSection, path, name)
	}
	if now.Before(c.NotBefore) {
		return nil, fmt.Errorf("%s.ca_cert: %s: certificate %q is not valid before %s",
			yamlSection, path, name, c.NotBefore.UTC().Format(time.RFC3339))
	}
	if now.After(c.NotAfter) {
		return nil, fmt.Errorf("%s.ca_cert: %s: certificate %q expired at %s",
			yamlSection, path, name, c.NotAfter.UTC().Format(time.RFC3339))
	}
	return c, nil
}

func loadChain(path string) ([]*x509.Certificate, error) {
	certs, err := readCerts(path)
	if err != nil {
		return nil, fmt.Errorf("%s.chain: %w", yamlSection, err)
	}
	for n, c := range certs {
		if !c.BasicConstraintsValid || !c.IsCA {
			return nil, fmt.Errorf("%s.chain: %s: certificate %d (%q) is not a CA; the chain holds intermediates only",
				yamlSection, path, n, c.Subject.String())
		}
	}
	return certs, nil
}

// readCerts parses every CERTIFICATE block in a PEM file and ignores other
// block types, as bundles often carry comments or keys alongside.
func readCerts(path string) ([]*x509.Certificate, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err // *fs.PathError already names the path.
	}
	var certs []*x509.Certificate
	for rest := data; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s: parse certificate %d: %w", path, len(certs), err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, fmt.Errorf("%s: no PEM CERTIFICATE block found", path)
	}
	return certs, nil
}

// loadKey reads the first private key block of a PEM file in any of the
// three encodings openssl and cert-manager produce.
func loadKey(path string) (crypto.Signer, error) {
	fail := func(format string, args ...any) error {
		return fmt.Errorf("%s.ca_key: %s: %s", yamlSection, path, fmt.Sprintf(format, args...))
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%s.ca_key: %w", yamlSection, err)
	}
	for rest := data; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			return nil, fail("no PEM private key block found")
		}
		if _, encrypted := b.Headers["Proc-Type"]; encrypted || b.Type == "ENCRYPTED PRIVATE KEY" {
			return nil, fail("encrypted private keys are not supported; mount the key unencrypted from a Secret")
		}
		var key any
		switch b.Type {
		case "PRIVATE KEY":
			key, err = x509.ParsePKCS8PrivateKey(b.Bytes)
		case "RSA PRIVATE KEY":
			key, err = x509.ParsePKCS1PrivateKey(b.Bytes)
		case "EC PRIVATE KEY":
			key, err = x509.ParseECPrivateKey(b.Bytes)
		default:
			continue // e.g. "EC PARAMETERS" written by `openssl ecparam -genkey`.
		}
		if err != nil {
			return nil, fail("parse %s: %v", b.Type, err)
		}
		if err := checkKeyType(key); err != nil {
			return nil, fail("%v", err)
		}
		return key.(crypto.Signer), nil
	}
}

func checkKeyType(key any) error {
	switch k := key.(type) {
	case *rsa.PrivateKey:
		if bits := k.N.BitLen(); bits < minRSABits {
			return fmt.Errorf("RSA key of %d bits is too small; use at least %d", bits, minRSABits)
		}
	case *ecdsa.PrivateKey:
		switch k.Curve {
		case elliptic.P256(), elliptic.P384(), elliptic.P521():
		default:
			return fmt.Errorf("ECDSA curve %s is not supported", k.Curve.Params().Name)
		}
	case ed25519.PrivateKey:
	default:
		return fmt.Errorf("unsupported key type %T; use RSA, ECDSA or Ed25519", key)
	}
	return nil
}

func publicKeysEqual(a, b crypto.PublicKey) bool {
	eq, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && eq.Equal(b)
}

// isSelfSigned reports whether c names itself as issuer, which is how
// clients decide whether it can be a trust anchor.
func isSelfSigned(c *x509.Certificate) bool {
	return bytes.Equal(c.RawSubject, c.RawIssuer)
}

// keyIdentifier derives a key identifier for CAs that lack a
// subjectKeyIdentifier: the leftmost 160 bits of the SHA-256 of the
// subjectPublicKey bit string (RFC 7093 §2, method 1), which is also what
// crypto/x509 generates for new CAs. Verifiers only compare it with the
// issuer's own identifier, and this issuer has none.
func keyIdentifier(c *x509.Certificate) ([]byte, error) {
	var spki struct {
		Algorithm asn1.RawValue
		PublicKey asn1.BitString
	}
	if _, err := asn1.Unmarshal(c.RawSubjectPublicKeyInfo, &spki); err != nil {
		return nil, fmt.Errorf("derive key identifier: %w", err)
	}
	sum := sha256.Sum256(spki.PublicKey.Bytes)
	return sum[:20], nil
}
