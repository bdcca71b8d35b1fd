package inject

import (
	"crypto/tls"
	"fmt"
	"os"
	"sync"
	"time"

	"go.uber.org/zap"
)

// certReloader serves the certificate in TLS.CertFile/KeyFile and reads the
// files again when either one's modification time or size changes. It
// checks on every handshake instead of polling or watching: a stat is cheap
// at webhook request rates, a rotated certificate is used by the very next
// handshake, and there is no goroutine to stop. cert-manager renews into a
// Secret whose kubelet mount swaps both files at once through a symlink, so
// os.Stat (which follows it) sees the change.
type certReloader struct {
	certFile, keyFile string
	log               *zap.Logger
	metrics           *metrics

	mu     sync.Mutex
	cert   *tls.Certificate
	loaded fileStamp
	// failed is the stamp of the last load that failed; it is not retried
	// (nor logged again) until the files change once more.
	failed fileStamp
	// statFailing logs a missing file once rather than on every handshake.
	statFailing bool
}

// fileStamp identifies one version of the certificate and key files.
type fileStamp struct {
	certMod, keyMod   time.Time
	certSize, keySize int64
}

// newCertReloader loads the files once and fails if they are unusable, so a
// pod without a certificate never becomes ready.
func newCertReloader(cfg TLSConfig, log *zap.Logger, m *metrics) (*certReloader, error) {
	r := &certReloader{certFile: cfg.CertFile, keyFile: cfg.KeyFile, log: log, metrics: m}
	st, err := r.stamp()
	if err != nil {
		return nil, fmt.Errorf("load serving certificate: %w", err)
	}
	cert, err := r.load()
	if err != nil {
		return nil, fmt.Errorf("load serving certificate: %w", err)
	}
	r.cert, r.loaded = cert, st
	return r, nil
}

// GetCertificate is tls.Config.GetCertificate. On a failed reload it keeps
// serving the previous certificate: an expiring certificate is better than
// no webhook at all.
func (r *certReloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	// The stamp is taken before reading, so a write that lands during the
	// read changes the stamp again and triggers another load.
	st, err := r.stamp()
	if err != nil {
		if !r.statFailing {
			r.statFailing = true
			r.log.Warn("stat serving certificate; keeping the current one", zap.Error(err))
		}
		return r.cert, nil
	}
	r.statFailing = false
	if st == r.loaded || st == r.failed {
		return r.cert, nil
	}
	cert, err := r.load()
	if err != nil {
		r.failed = st
		r.metrics.certReloads.WithLabelValues("error").Inc()
		r.log.Warn("reload serving certificate; keeping the current one", zap.Error(err))
		return r.cert, nil
	}
	r.cert, r.loaded, r.failed = cert, st, fileStamp{}
	r.metrics.certReloads.WithLabelValues("success").Inc()
	r.log.Info("serving certificate reloaded", zap.Time("not_after", cert.Leaf.NotAfter))
	return r.cert, nil
}

func (r *certReloader) stamp() (fileStamp, error) {
	c, err := os.Stat(r.certFile)
	if err != nil {
		return fileStamp{}, fmt.Errorf("stat: %w", err)
	}
	k, err := os.Stat(r.keyFile)
	if err != nil {
		return fileStamp{}, fmt.Errorf("stat: %w", err)
	}
	return fileStamp{certMod: c.ModTime(), keyMod: k.ModTime(), certSize: c.Size(), keySize: k.Size()}, nil
}

// load reads and parses the pair and records its expiry.
func (r *certReloader) load() (*tls.Certificate, error) {
	cert, err := tls.LoadX509KeyPair(r.certFile, r.keyFile)
	if err != nil {
		return nil, fmt.Errorf("parse key pair: %w", err)
	}
	// LoadX509KeyPair fills Leaf since Go 1.23.
	r.metrics.certNotAfter.Set(float64(cert.Leaf.NotAfter.Unix()))
	return &cert, nil
}
