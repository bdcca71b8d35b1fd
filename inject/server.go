package inject

import (
	"fmt"
	"net/http"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

// Server answers AdmissionReviews. Build it with New; serve Handler yourself
// or let Run do it with TLS, the admin port and graceful shutdown.
type Server struct {
	log           *zap.Logger
	metrics       *metrics
	mut           *mutator
	maxBytes      int64
	failurePolicy string
	// draining flips /healthz to 503 while Run waits out shutdown_delay,
	// so the pod leaves the Service's endpoints before it stops answering.
	draining atomic.Bool
}

// New validates cfg, registers the egressd_inject_* metrics on reg and
// returns a Server. It does no I/O.
func New(cfg Config, log *zap.Logger, reg prometheus.Registerer) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("inject config: %w", err)
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, err
	}
	return &Server{
		log:           log,
		metrics:       m,
		mut:           newMutator(cfg),
		maxBytes:      cfg.MaxRequestBytes,
		failurePolicy: cfg.FailurePolicy,
	}, nil
}

// Handler serves POST /mutate (the webhook's service path) and GET /healthz
// (readiness). Metrics are not served here; Run exposes the caller's
// registry on the admin port.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/mutate", s.serveMutate)
	mux.HandleFunc("GET /healthz", s.serveHealth)
	return mux
}

func (s *Server) serveHealth(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if s.draining.Load() {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte("draining\n"))
		return
	}
	_, _ = w.Write([]byte("ok\n"))
}

// serveLive is the admin port's liveness answer: the process is serving.
func serveLive(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write([]byte("ok\n"))
}
