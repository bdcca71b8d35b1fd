package tlsinspect

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// Names and lifetime of the development CA written by `egressd ca init`.
const (
	DevCACertFile = "ca.crt"
	DevCAKeyFile  = "ca.key"
	// devCAValidity is short on purpose: a development CA that lingers in
	// some image's trust store should stop working on its own.
	devCAValidity = 365 * 24 * time.Hour
)

// InitCA writes a development inspection CA (ECDSA P-256, self-signed,
// path length 0 so it can only sign leaves) to dir/ca.crt and dir/ca.key.
// The key file is created 0600. Existing files are never overwritten: a
// CA that workloads already trust must not be replaced by accident.
func InitCA(dir string, now time.Time) (certPath, keyPath string, err error) {
	certPath = filepath.Join(dir, DevCACertFile)
	keyPath = filepath.Join(dir, DevCAKeyFile)
	for _, p := range []string{certPath, keyPath} {
		if _, err := os.Lstat(p); err == nil {
			return "", "", fmt.Errorf("ca init: %s already exists; refusing to overwrite", p)
		} else if !errors.Is(err, fs.ErrNotExist) {
			return "", "", fmt.Errorf("ca init: %w", err)
		}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", "", fmt.Errorf("ca init: %w", err)
	}
	certPEM, keyPEM, err := newDevCA(now)
	if err != nil {
		return "", "", fmt.Errorf("ca init: %w", err)
	}
	if err := writeNew(keyPath, keyPEM, 0o600); err != nil {
		return "", "", fmt.Errorf("ca init: %w", err)
	}
	if err := writeNew(certPath, certPEM, 0o644); err != nil {
		// Do not leave a key without its certificate behind; a rerun
		// would refuse to overwrite it.
		_ = os.Remove(keyPath)
		return "", "", fmt.Errorf("ca init: %w", err)
	}
	return certPath, keyPath, nil
}

func newDevCA(now time.Time) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generate key: %w", err)
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject: pkix.Name{
			CommonName:   "egressd development inspection CA",
			Organization: []string{"egressd (development only)"},
		},
		NotBefore:             now.Add(-LeafBackdate),
		NotAfter:              now.Add(devCAValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, nil, fmt.Errorf("sign: %w", err)
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("marshal key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8}), nil
}

// writeNew creates path exclusively (O_EXCL closes the race with a
// concurrent writer that the Lstat check leaves open) and syncs it.
func writeNew(path string, data []byte, perm fs.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		_ = f.Close()
		_ = os.Remove(path)
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		_ = os.Remove(path)
		return fmt.Errorf("sync %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		_ = os.Remove(path)
		return fmt.Errorf("close %s: %w", path, err)
	}
	return nil
}
