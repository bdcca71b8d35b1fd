package inject

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"
)

// Timeouts of the webhook listener. The API server gives a review at most
// timeoutSeconds (<= 30 s), so nothing legitimate is slower than these.
const (
	readHeaderTimeout = 5 * time.Second
	readTimeout       = 15 * time.Second
	writeTimeout      = 15 * time.Second
	// idleTimeout outlives the API server's reuse of connections so it
	// does not pay a handshake per pod.
	idleTimeout    = 90 * time.Second
	maxHeaderBytes = 64 << 10
)

// Run serves the webhook over HTTPS on cfg.Listen and, unless admin_listen
// is "off", /metrics (from reg) and /healthz over plain HTTP on
// cfg.AdminListen, until ctx is cancelled. Then the webhook port's /healthz
// turns 503, Run
// waits cfg.ShutdownDelay, drains in-flight reviews for up to
// cfg.ShutdownTimeout and returns nil. It returns an error if the
// certificate cannot be loaded at start or a listener fails.
func Run(ctx context.Context, cfg Config, log *zap.Logger, reg *prometheus.Registry) error {
	s, err := New(cfg, log, reg)
	if err != nil {
		return err
	}
	certs, err := newCertReloader(cfg.TLS, log, s.metrics)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen %s: %w", cfg.Listen, err)
	}
	var adminLn net.Listener
	if cfg.AdminListen != "off" {
		adminLn, err = net.Listen("tcp", cfg.AdminListen)
		if err != nil {
			_ = ln.Close()
			return fmt.Errorf("listen admin %s: %w", cfg.AdminListen, err)
		}
	}
	return s.serve(ctx, runDeps{
		certs: certs, reg: reg, ln: ln, adminLn: adminLn,
		shutdownDelay: cfg.ShutdownDelay, shutdownTimeout: cfg.ShutdownTimeout,
	})
}

// runDeps is what serve needs beyond the Server; tests build it around
// loopback listeners.
type runDeps struct {
	certs           *certReloader
	reg             prometheus.Gatherer
	ln              net.Listener
	adminLn         net.Listener // nil: no admin port
	shutdownDelay   time.Duration
	shutdownTimeout time.Duration
}

func (s *Server) serve(ctx context.Context, d runDeps) error {
	errLog := zap.NewStdLog(s.log)
	web := &http.Server{
		Handler: s.Handler(),
		TLSConfig: &tls.Config{
			MinVersion:     tls.VersionTLS12,
			GetCertificate: d.certs.GetCertificate,
		},
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          errLog,
	}
	servers := []*http.Server{web}

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		// Empty file names: the certificate comes from GetCertificate.
		if err := web.ServeTLS(d.ln, "", ""); !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("serve webhook: %w", err)
		}
		return nil
	})
	if d.adminLn != nil {
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", promhttp.HandlerFor(d.reg, promhttp.HandlerOpts{ErrorLog: errLog}))
		// Liveness only: readiness (and its 503 while draining) is the
		// webhook port's /healthz, so a draining pod is not also restarted.
		mux.HandleFunc("GET /healthz", serveLive)
		admin := &http.Server{
			Handler:           mux,
			ReadHeaderTimeout: readHeaderTimeout,
			ReadTimeout:       readTimeout,
			WriteTimeout:      writeTimeout,
			IdleTimeout:       idleTimeout,
			MaxHeaderBytes:    maxHeaderBytes,
			ErrorLog:          errLog,
		}
		servers = append(servers, admin)
		g.Go(func() error {
			if err := admin.Serve(d.adminLn); !errors.Is(err, http.ErrServerClosed) {
				return fmt.Errorf("serve admin: %w", err)
			}
			return nil
		})
	}
	g.Go(func() error {
		// gctx ends on the caller's cancel or on a listener failing.
		<-gctx.Done()
		s.draining.Store(true)
		if ctx.Err() != nil && d.shutdownDelay > 0 {
			s.log.Info("draining before shutdown", zap.Duration("delay", d.shutdownDelay))
			time.Sleep(d.shutdownDelay)
		}
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), d.shutdownTimeout)
		defer cancel()
		var errs []error
		for _, srv := range servers {
			if err := srv.Shutdown(sctx); err != nil {
				errs = append(errs, fmt.Errorf("shutdown: %w", err))
			}
		}
		return errors.Join(errs...)
	})
	return g.Wait()
}
