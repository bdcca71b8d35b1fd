package tlsinspect

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/egressd/egressd/internal/testpki"
)

func TestInitCA(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ca") // created by InitCA
	now := time.Now()
	certPath, keyPath, err := InitCA(dir, now)
	if err != nil {
		t.Fatal(err)
	}
	if certPath != filepath.Join(dir, "ca.crt") || keyPath != filepath.Join(dir, "ca.key") {
		t.Fatalf("paths %s %s", certPath, keyPath)
	}
	st, err := os.Stat(keyPath)
	if err != nil {
		t.Fatal(err)
	}
	if perm := st.Mode().Perm(); perm != 0o600 {
		t.Fatalf("key mode %o, want 600", perm)
	}

	// The dev CA must load as an inspection CA and sign verifiable leaves.
	insp, err := Load(Config{CACert: certPath, CAKey: keyPath}, nil)
	if err != nil {
		t.Fatalf("Load(dev CA) = %v", err)
	}
	certs, err := readCerts(certPath)
	if err != nil {
		t.Fatal(err)
	}
	ca := certs[0]
	if pub, ok := ca.PublicKey.(*ecdsa.PublicKey); !ok || pub.Curve != elliptic.P256() {
		t.Fatalf("dev CA key is %T, want ECDSA P-256", ca.PublicKey)
	}
	if ca.MaxPathLen != 0 || !ca.MaxPathLenZero {
		t.Fatal("dev CA may sign intermediates; want pathlen 0")
	}
	if got, want := insp.CAExpiry(), now.Add(devCAValidity).Truncate(time.Second); !got.Equal(want) {
		t.Fatalf("CAExpiry = %v, want %v", got, want)
	}
	leaf, err := insp.Certificate("dev.example")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := leaf.Leaf.Verify(x509.VerifyOptions{DNSName: "dev.example", Roots: testpki.Pool(ca)}); err != nil {
		t.Fatalf("leaf from dev CA does not verify: %v", err)
	}
	before, _ := os.ReadFile(keyPath)

	tests := []struct {
		name    string
		prepare func(t *testing.T) string
		want    func(dir string) string
	}{
		{
			name:    "both files exist",
			prepare: func(*testing.T) string { return dir },
			want: func(d string) string {
				return "ca init: " + filepath.Join(d, "ca.crt") + " already exists; refusing to overwrite"
			},
		},
		{
			name: "only the key exists",
			prepare: func(t *testing.T) string {
				d := t.TempDir()
				if err := os.WriteFile(filepath.Join(d, "ca.key"), []byte("precious"), 0o600); err != nil {
					t.Fatal(err)
				}
				return d
			},
			want: func(d string) string {
				return "ca init: " + filepath.Join(d, "ca.key") + " already exists; refusing to overwrite"
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := tc.prepare(t)
			_, _, err := InitCA(d, now)
			if err == nil || err.Error() != tc.want(d) {
				t.Fatalf("InitCA() = %v\nwant %s", err, tc.want(d))
			}
		})
	}
	if after, _ := os.ReadFile(keyPath); string(after) != string(before) {
		t.Fatal("existing key was modified")
	}
}

func TestTrustInstructions(t *testing.T) {
	text := TrustInstructions("/out/dev/ca.crt")
	for _, want := range []string{
		"Inspection CA certificate: /out/dev/ca.crt",
		"--from-file=egressd-ca.crt=/out/dev/ca.crt",
		"SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "NODE_EXTRA_CA_CERTS", "update-ca-certificates",
		// The bundle must keep the system roots or spliced hosts break.
		"cat /etc/ssl/certs/ca-certificates.crt /egressd-ca/egressd-ca.crt",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("instructions lack %q", want)
		}
	}
	if strings.Contains(text, "{{CERT}}") {
		t.Error("placeholder left in the instructions")
	}
}
