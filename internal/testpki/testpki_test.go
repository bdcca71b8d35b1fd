package testpki

import (
	"crypto/tls"
	"crypto/x509"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestLeafChainsToItsRootForEveryName: a leaf under an intermediate
// verifies for each DNS and IP name it was issued for, and for no other.
func TestLeafChainsToItsRootForEveryName(t *testing.T) {
	root := NewRoot(t, "test root")
	mid := root.Intermediate(t, "test intermediate")
	leaf := mid.Leaf(t, "origin.test", "127.0.0.1", "::1")
	opts := x509.VerifyOptions{Roots: Pool(root.Cert), Intermediates: Pool(mid.Cert)}
	for _, name := range []string{"origin.test", "127.0.0.1", "::1"} {
		opts.DNSName = name
		if _, err := leaf.Cert.Verify(opts); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	opts.DNSName = "other.test"
	if _, err := leaf.Cert.Verify(opts); err == nil {
		t.Error("leaf verified for a name it was not issued for")
	}
	opts.DNSName, opts.Intermediates = "origin.test", nil
	if _, err := leaf.Cert.Verify(opts); err == nil {
		t.Error("leaf verified without its intermediate")
	}
	if root.Cert.SerialNumber.Cmp(mid.Cert.SerialNumber) == 0 {
		t.Error("two certificates share a serial")
	}
	if now := time.Now(); now.Before(leaf.Cert.NotBefore) || now.After(leaf.Cert.NotAfter) {
		t.Errorf("default validity %v..%v does not cover now", leaf.Cert.NotBefore, leaf.Cert.NotAfter)
	}
}

// TestWriteFilesLoadAsAKeyPair: the PEM files load with crypto/tls, the
// key readable by its owner only.
func TestWriteFilesLoadAsAKeyPair(t *testing.T) {
	dir := t.TempDir()
	leaf := NewRoot(t, "root").Leaf(t, "origin.test")
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	if err := leaf.WriteFiles(certFile, keyFile); err != nil {
		t.Fatal(err)
	}
	kp, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if string(kp.Certificate[0]) != string(leaf.Cert.Raw) {
		t.Error("the written certificate is not the leaf")
	}
	if fi, err := os.Stat(keyFile); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v, %v; want 0600", fi.Mode().Perm(), err)
	}
}
