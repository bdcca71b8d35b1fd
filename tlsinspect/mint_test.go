package tlsinspect

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/egressd/egressd/internal/testpki"
)

func TestMintedLeaf(t *testing.T) {
	insp, _, ca, _ := newInspector(t, nil)
	tests := []struct {
		name     string
		host     string
		wantDNS  []string
		wantIP   net.IP
		wantCN   string
		verifyAs string // a name or IP the leaf must verify for
		notFor   string // and one it must not
	}{
		{name: "DNS name", host: "api.example.com", wantDNS: []string{"api.example.com"}, wantCN: "api.example.com", verifyAs: "api.example.com", notFor: "evil.example.com"},
		{name: "normalized", host: "API.Example.COM.", wantDNS: []string{"api.example.com"}, wantCN: "api.example.com", verifyAs: "api.example.com", notFor: "example.com"},
		{name: "IPv4 literal", host: "192.0.2.7", wantIP: net.ParseIP("192.0.2.7"), wantCN: "192.0.2.7", verifyAs: "192.0.2.7", notFor: "192.0.2.8"},
		{name: "IPv6 literal in brackets", host: "[2001:db8::1]", wantIP: net.ParseIP("2001:db8::1"), wantCN: "2001:db8::1", verifyAs: "2001:db8::1", notFor: "2001:db8::2"},
		{name: "IPv4-mapped IPv6", host: "::ffff:192.0.2.9", wantIP: net.ParseIP("192.0.2.9"), wantCN: "192.0.2.9", verifyAs: "192.0.2.9", notFor: "192.0.2.10"},
		{
			name:     "name longer than a CN",
			host:     strings.Repeat("a", 60) + ".example.com",
			wantDNS:  []string{strings.Repeat("a", 60) + ".example.com"},
			verifyAs: strings.Repeat("a", 60) + ".example.com", notFor: "example.com",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := insp.Certificate(tc.host)
			if err != nil {
				t.Fatal(err)
			}
			leaf := c.Leaf
			if !slicesEqual(leaf.DNSNames, tc.wantDNS) {
				t.Errorf("DNSNames = %q, want %q", leaf.DNSNames, tc.wantDNS)
			}
			if tc.wantIP != nil && (len(leaf.IPAddresses) != 1 || !leaf.IPAddresses[0].Equal(tc.wantIP)) {
				t.Errorf("IPAddresses = %v, want [%v]", leaf.IPAddresses, tc.wantIP)
			}
			if tc.wantIP == nil && len(leaf.IPAddresses) != 0 {
				t.Errorf("IPAddresses = %v, want none", leaf.IPAddresses)
			}
			if leaf.Subject.CommonName != tc.wantCN {
				t.Errorf("CommonName = %q, want %q", leaf.Subject.CommonName, tc.wantCN)
			}
			opts := x509.VerifyOptions{Roots: testpki.Pool(ca.Cert), CurrentTime: t0}
			if _, err := leaf.Verify(withName(opts, tc.verifyAs)); err != nil {
				t.Errorf("leaf does not verify for %s: %v", tc.verifyAs, err)
			}
			_, err = leaf.Verify(withName(opts, tc.notFor))
			var he x509.HostnameError
			if !errors.As(err, &he) {
				t.Errorf("leaf verified for %s: err = %v, want a HostnameError", tc.notFor, err)
			}
		})
	}
}

func withName(o x509.VerifyOptions, name string) x509.VerifyOptions {
	o.DNSName = name
	return o
}

func slicesEqual(a, b []string) bool { return strings.Join(a, "\x00") == strings.Join(b, "\x00") }

func TestLeafFields(t *testing.T) {
	insp, _, ca, _ := newInspector(t, func(c *Config) { c.LeafValidity = 6 * time.Hour })
	c, err := insp.Certificate("fields.example")
	if err != nil {
		t.Fatal(err)
	}
	leaf := c.Leaf
	if got, want := leaf.NotBefore, t0.Add(-LeafBackdate); !got.Equal(want) {
		t.Errorf("NotBefore = %v, want %v", got, want)
	}
	if got, want := leaf.NotAfter, t0.Add(6*time.Hour); !got.Equal(want) {
		t.Errorf("NotAfter = %v, want %v", got, want)
	}
	if len(leaf.ExtKeyUsage) != 1 || leaf.ExtKeyUsage[0] != x509.ExtKeyUsageServerAuth {
		t.Errorf("ExtKeyUsage = %v, want [serverAuth]", leaf.ExtKeyUsage)
	}
	if leaf.IsCA || !leaf.BasicConstraintsValid {
		t.Errorf("IsCA=%v BasicConstraintsValid=%v, want a CA:FALSE leaf", leaf.IsCA, leaf.BasicConstraintsValid)
	}
	if leaf.KeyUsage != x509.KeyUsageDigitalSignature {
		t.Errorf("KeyUsage = %v, want digitalSignature only", leaf.KeyUsage)
	}
	if !bytes.Equal(leaf.AuthorityKeyId, ca.Cert.SubjectKeyId) || len(leaf.AuthorityKeyId) == 0 {
		t.Errorf("AuthorityKeyId = %x, want the CA's %x", leaf.AuthorityKeyId, ca.Cert.SubjectKeyId)
	}
	pub, ok := leaf.PublicKey.(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P256() {
		t.Errorf("leaf key is %T, want ECDSA P-256", leaf.PublicKey)
	}
	if !bytes.Equal(leaf.RawIssuer, ca.Cert.RawSubject) {
		t.Error("leaf issuer is not the CA subject")
	}
	// A self-signed CA is the client's anchor, so nothing follows the leaf.
	if len(c.Certificate) != 1 || !bytes.Equal(c.Certificate[0], leaf.Raw) {
		t.Errorf("chain has %d certificates, want the leaf only", len(c.Certificate))
	}
}

// TestSerialsAreRandom mints many leaves and checks serials are distinct,
// positive and use the full 128 bits (about half have the top bit set).
func TestSerialsAreRandom(t *testing.T) {
	const n = 64
	seen := make(map[string]bool, n)
	wide := 0
	for range n {
		s, err := randomSerial()
		if err != nil {
			t.Fatal(err)
		}
		if s.Sign() <= 0 || s.BitLen() > 128 {
			t.Fatalf("serial %x out of range", s)
		}
		if s.BitLen() > 120 {
			wide++
		}
		if seen[s.String()] {
			t.Fatalf("serial %x repeated", s)
		}
		seen[s.String()] = true
	}
	// P(BitLen <= 120) = 2^-8 per serial; 32 or fewer wide ones out of 64 would mean the top bits are missing.
	if wide < n/2 {
		t.Fatalf("only %d of %d serials longer than 120 bits", wide, n)
	}
}

// TestLeafClampedToCA: a leaf must not outlive its CA, or clients reject it.
func TestLeafClampedToCA(t *testing.T) {
	ca := issue(t, testpki.Spec{CommonName: "Short CA", NotBefore: t0.Add(-30 * time.Minute), NotAfter: t0.Add(2 * time.Hour), IsCA: true})
	insp, err := load(caFiles(t, t.TempDir(), ca), nil, clockAt(t0))
	if err != nil {
		t.Fatal(err)
	}
	c, err := insp.Certificate("clamp.example")
	if err != nil {
		t.Fatal(err)
	}
	if !c.Leaf.NotAfter.Equal(ca.Cert.NotAfter) || !c.Leaf.NotBefore.Equal(ca.Cert.NotBefore) {
		t.Fatalf("leaf valid %v..%v, want clamped to the CA's %v..%v",
			c.Leaf.NotBefore, c.Leaf.NotAfter, ca.Cert.NotBefore, ca.Cert.NotAfter)
	}
}

func TestCertificateRejectsBadHosts(t *testing.T) {
	insp, _, _, obs := newInspector(t, nil)
	tests := []struct {
		name, host, want string
	}{
		{name: "empty", host: "", want: "tlsinspect: invalid host name: empty"},
		{name: "wildcard", host: "*.example.com", want: `tlsinspect: invalid host name: "*.example.com": invalid character '*'`},
		{name: "port", host: "example.com:443", want: `tlsinspect: invalid host name: "example.com:443": invalid character ':'`},
		{name: "empty label", host: "a..b", want: `tlsinspect: invalid host name: "a..b": empty label`},
		{name: "unicode", host: "bücher.example", want: `tlsinspect: invalid host name: "bücher.example": invalid byte 0xc3`},
		{name: "long label", host: strings.Repeat("x", 64) + ".example", want: `tlsinspect: invalid host name: "` + strings.Repeat("x", 64) + `.example": label longer than 63 bytes`},
		{name: "too long", host: strings.Repeat("abc.", 64) + "com", want: "tlsinspect: invalid host name: longer than 253 bytes"},
		{name: "zone", host: "fe80::1%eth0", want: `tlsinspect: invalid host name: "fe80::1%eth0" has an IPv6 zone`},
		{name: "control character", host: "a\x00.example", want: `tlsinspect: invalid host name: "a\x00.example": invalid byte 0x00`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := insp.Certificate(tc.host)
			if err == nil || err.Error() != tc.want || !errors.Is(err, ErrInvalidHost) {
				t.Fatalf("Certificate(%q) = %v\nwant %s", tc.host, err, tc.want)
			}
		})
	}
	if n := obs.mints.Load(); n != 0 {
		t.Fatalf("%d mints for invalid hosts, want 0", n)
	}
}
