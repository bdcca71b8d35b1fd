package tlsinspect

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/egressd/egressd/internal/testpki"
)

var (
	rsaKeyOnce sync.Once
	rsaKey2048 *rsa.PrivateKey
)

// rsaKey generates one 2048-bit key per test binary: RSA keygen is slow
// under -race and the tests only need a valid key.
func rsaKey(t testing.TB) *rsa.PrivateKey {
	t.Helper()
	rsaKeyOnce.Do(func() {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		rsaKey2048 = k
	})
	return rsaKey2048
}

func clockAt(at time.Time) func() time.Time { return func() time.Time { return at } }

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	goodCA := issue(t, testpki.Spec{CommonName: "Good CA", NotBefore: t0.Add(-time.Hour), NotAfter: t0.Add(time.Hour), IsCA: true})
	otherKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leaf := issue(t, testpki.Spec{CommonName: "Leaf", NotBefore: t0.Add(-time.Hour), NotAfter: t0.Add(time.Hour)})
	noCertSign := issue(t, testpki.Spec{CommonName: "Signing Only", KeyUsage: x509.KeyUsageDigitalSignature, IsCA: true})
	clientOnly := issue(t, testpki.Spec{CommonName: "Client CA", ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, IsCA: true})
	expired := issue(t, testpki.Spec{CommonName: "Old CA", NotBefore: t0.Add(-48 * time.Hour), NotAfter: t0.Add(-time.Hour), IsCA: true})
	future := issue(t, testpki.Spec{CommonName: "Future CA", NotBefore: t0.Add(time.Hour), NotAfter: t0.Add(48 * time.Hour), IsCA: true})
	smallRSA, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	smallCA := issue(t, testpki.Spec{CommonName: "Small CA", Key: smallRSA, IsCA: true})

	good := caFiles(t, filepath.Join(dir), goodCA)
	missing := filepath.Join(dir, "missing.pem")
	write := func(name string, blocks ...*pem.Block) string { return writePEM(t, dir, name, blocks...) }
	with := func(f func(*Config)) Config { c := good; f(&c); return c }
	certOnly := func(name string, c *testpki.Cert) Config {
		return Config{CACert: write(name+".crt", c.CertBlock()), CAKey: write(name+".key", testpki.KeyBlock(t, c.Key))}
	}

	tests := []struct {
		name   string
		cfg    Config
		want   string
		prefix bool // want is a prefix of the error
	}{
		{name: "not enabled", cfg: Config{}, want: "tlsinspect: tls_inspection.ca_cert is not set"},
		{name: "invalid config", cfg: Config{CACert: "x"}, want: "tls_inspection.ca_key: required when ca_cert is set"},
		{
			name: "missing cert file",
			cfg:  with(func(c *Config) { c.CACert = missing }),
			want: "tls_inspection.ca_cert: open " + missing + ": no such file or directory",
		},
		{
			name: "missing key file",
			cfg:  with(func(c *Config) { c.CAKey = missing }),
			want: "tls_inspection.ca_key: open " + missing + ": no such file or directory",
		},
		{
			name: "cert file has no certificate",
			cfg:  with(func(c *Config) { c.CACert = good.CAKey }),
			want: "tls_inspection.ca_cert: " + good.CAKey + ": no PEM CERTIFICATE block found",
		},
		{
			name: "key file has no key",
			cfg:  with(func(c *Config) { c.CAKey = good.CACert }),
			want: "tls_inspection.ca_key: " + good.CACert + ": no PEM private key block found",
		},
		{
			name: "key does not match certificate",
			cfg:  with(func(c *Config) { c.CAKey = write("other.key", testpki.KeyBlock(t, otherKey)) }),
			want: "tls_inspection.ca_key: " + filepath.Join(dir, "other.key") +
				": private key does not match the certificate in tls_inspection.ca_cert",
		},
		{
			name: "leaf is not a CA",
			cfg:  certOnly("leaf", leaf),
			want: "tls_inspection.ca_cert: " + filepath.Join(dir, "leaf.crt") +
				`: certificate "CN=Leaf" is not a CA (basicConstraints CA:TRUE missing)`,
		},
		{
			name: "CA without certSign",
			cfg:  certOnly("nosign", noCertSign),
			want: "tls_inspection.ca_cert: " + filepath.Join(dir, "nosign.crt") +
				`: certificate "CN=Signing Only" is not a CA (keyUsage lacks keyCertSign)`,
		},
		{
			name: "CA restricted to clientAuth",
			cfg:  certOnly("client", clientOnly),
			want: "tls_inspection.ca_cert: " + filepath.Join(dir, "client.crt") +
				`: certificate "CN=Client CA" has an extKeyUsage without serverAuth, so clients would reject its leaves`,
		},
		{
			name: "expired CA",
			cfg:  certOnly("expired", expired),
			want: "tls_inspection.ca_cert: " + filepath.Join(dir, "expired.crt") +
				`: certificate "CN=Old CA" expired at 2026-03-01T11:00:00Z`,
		},
		{
			name: "CA not yet valid",
			cfg:  certOnly("future", future),
			want: "tls_inspection.ca_cert: " + filepath.Join(dir, "future.crt") +
				`: certificate "CN=Future CA" is not valid before 2026-03-01T13:00:00Z`,
		},
		{
			name: "bundle in ca_cert",
			cfg:  with(func(c *Config) { c.CACert = write("bundle.crt", goodCA.CertBlock(), expired.CertBlock()) }),
			want: "tls_inspection.ca_cert: " + filepath.Join(dir, "bundle.crt") +
				": holds 2 certificates; put only the signing CA here and intermediates in tls_inspection.chain",
		},
		{
			name: "encrypted key",
			cfg: with(func(c *Config) {
				c.CAKey = write("enc.key", &pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: []byte{1}})
			}),
			want: "tls_inspection.ca_key: " + filepath.Join(dir, "enc.key") +
				": encrypted private keys are not supported; mount the key unencrypted from a Secret",
		},
		{
			name: "garbled key",
			cfg:  with(func(c *Config) { c.CAKey = write("bad.key", &pem.Block{Type: "EC PRIVATE KEY", Bytes: []byte{1, 2}}) }),
			want: "tls_inspection.ca_key: " + filepath.Join(dir, "bad.key") +
				": parse EC PRIVATE KEY: x509: failed to parse EC private key: asn1: ",
			prefix: true, // the rest is encoding/asn1's wording
		},
		{
			name: "RSA key too small",
			cfg:  certOnly("small", smallCA),
			want: "tls_inspection.ca_key: " + filepath.Join(dir, "small.key") +
				": RSA key of 1024 bits is too small; use at least 2048",
		},
		{
			name: "chain holds a leaf",
			cfg:  with(func(c *Config) { c.Chain = write("chain.pem", leaf.CertBlock()) }),
			want: "tls_inspection.chain: " + filepath.Join(dir, "chain.pem") +
				`: certificate 0 ("CN=Leaf") is not a CA; the chain holds intermediates only`,
		},
		{
			name: "missing upstream root",
			cfg:  with(func(c *Config) { c.UpstreamRoots = []string{good.CACert, missing} }),
			want: "tls_inspection.upstream_roots[1]: open " + missing + ": no such file or directory",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			insp, err := load(tc.cfg, nil, clockAt(t0))
			if err == nil || (err.Error() != tc.want && !(tc.prefix && strings.HasPrefix(err.Error(), tc.want))) {
				t.Fatalf("Load() error = %v\nwant %s", err, tc.want)
			}
			if insp != nil {
				t.Fatal("Load() returned an Inspector with an error")
			}
		})
	}
}

// TestLoadKeyTypes loads CAs of every supported key type and encoding and
// checks a minted leaf verifies against that CA.
func TestLoadKeyTypes(t *testing.T) {
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	sec1, err := x509.MarshalECPrivateKey(p256)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		key    crypto.Signer
		blocks func(t testing.TB) []*pem.Block
	}{
		{name: "ECDSA P-256 PKCS#8", key: p256, blocks: func(t testing.TB) []*pem.Block { return []*pem.Block{testpki.KeyBlock(t, p256)} }},
		{
			// `openssl ecparam -genkey` writes an EC PARAMETERS block first.
			name: "ECDSA P-256 SEC 1 with parameters",
			key:  p256,
			blocks: func(testing.TB) []*pem.Block {
				return []*pem.Block{{Type: "EC PARAMETERS", Bytes: []byte{6, 8, 42, 134, 72, 206, 61, 3, 1, 7}}, {Type: "EC PRIVATE KEY", Bytes: sec1}}
			},
		},
		{name: "ECDSA P-384 PKCS#8", key: p384, blocks: func(t testing.TB) []*pem.Block { return []*pem.Block{testpki.KeyBlock(t, p384)} }},
		{
			name: "RSA 2048 PKCS#1",
			key:  rsaKey(t),
			blocks: func(t testing.TB) []*pem.Block {
				return []*pem.Block{{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(rsaKey(t))}}
			},
		},
		{name: "Ed25519 PKCS#8", key: ed, blocks: func(t testing.TB) []*pem.Block { return []*pem.Block{testpki.KeyBlock(t, ed)} }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			ca := issue(t, testpki.Spec{CommonName: tc.name, Key: tc.key, IsCA: true})
			cfg := Config{
				CACert: writePEM(t, dir, "ca.crt", ca.CertBlock()),
				CAKey:  writePEM(t, dir, "ca.key", tc.blocks(t)...),
			}
			insp, err := Load(cfg, nil)
			if err != nil {
				t.Fatalf("Load() = %v", err)
			}
			c, err := insp.Certificate("keys.example")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.Leaf.Verify(x509.VerifyOptions{DNSName: "keys.example", Roots: testpki.Pool(ca.Cert)}); err != nil {
				t.Fatalf("minted leaf does not verify: %v", err)
			}
			if !insp.CAExpiry().Equal(ca.Cert.NotAfter) {
				t.Fatalf("CAExpiry() = %v, want %v", insp.CAExpiry(), ca.Cert.NotAfter)
			}
		})
	}
}

// TestIntermediateChain uses an inspection CA that is itself an
// intermediate: clients trust only the root, so the leaf must be followed
// by the inspection CA and the configured chain, without duplicates.
func TestIntermediateChain(t *testing.T) {
	root := issue(t, testpki.Spec{CommonName: "Corp Root", IsCA: true})
	mid := issue(t, testpki.Spec{CommonName: "Corp Mid", Parent: root, IsCA: true})
	issuing := issue(t, testpki.Spec{CommonName: "Corp Inspection", Parent: mid, IsCA: true})

	tests := []struct {
		name  string
		chain []*pem.Block
		want  []*x509.Certificate // after the leaf
	}{
		{name: "chain lists the parents only", chain: []*pem.Block{mid.CertBlock()}, want: []*x509.Certificate{issuing.Cert, mid.Cert}},
		{name: "chain already lists the issuing CA", chain: []*pem.Block{issuing.CertBlock(), mid.CertBlock()}, want: []*x509.Certificate{issuing.Cert, mid.Cert}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			cfg := caFiles(t, dir, issuing)
			cfg.Chain = writePEM(t, dir, "chain.pem", tc.chain...)
			insp, err := Load(cfg, nil)
			if err != nil {
				t.Fatal(err)
			}
			c, err := insp.Certificate("chain.example")
			if err != nil {
				t.Fatal(err)
			}
			if got, want := len(c.Certificate), 1+len(tc.want); got != want {
				t.Fatalf("chain length %d, want %d", got, want)
			}
			inter := x509.NewCertPool()
			for i, w := range tc.want {
				if !bytes.Equal(c.Certificate[1+i], w.Raw) {
					t.Fatalf("chain[%d] is not %s", 1+i, w.Subject)
				}
				inter.AddCert(w)
			}
			if _, err := c.Leaf.Verify(x509.VerifyOptions{DNSName: "chain.example", Roots: testpki.Pool(root.Cert), Intermediates: inter}); err != nil {
				t.Fatalf("leaf does not verify against the root through the sent chain: %v", err)
			}
		})
	}
}

func TestKeyIdentifierMatchesGenerated(t *testing.T) {
	// crypto/x509 generates SubjectKeyId for CAs with RFC 7093 method 1;
	// the derived AuthorityKeyId for CAs without one must use the same rule
	// so the result looks like any other tool's.
	ca := issue(t, testpki.Spec{CommonName: "SKID CA", IsCA: true})
	got, err := keyIdentifier(ca.Cert)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, ca.Cert.SubjectKeyId) {
		t.Fatalf("keyIdentifier = %x, crypto/x509 generated %x", got, ca.Cert.SubjectKeyId)
	}
}
