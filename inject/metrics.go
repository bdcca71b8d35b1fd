package inject

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Label values of egressd_inject_pods_total{result}.
const (
	resultMutated = "mutated"
	resultSkipped = "skipped"
	resultError   = "error"
)

// Label values of egressd_inject_requests_rejected_total{reason}: requests
// answered with an HTTP error because they were not a usable AdmissionReview.
const (
	rejectMethod      = "method"
	rejectContentType = "content_type"
	rejectTooLarge    = "too_large"
	rejectMalformed   = "malformed"
)

// metrics holds every egressd_inject_* series. Names, labels and Help live
// here only, on egressd's conventions (metrics/ in the proxy).
type metrics struct {
	pods         *prometheus.CounterVec
	rejected     *prometheus.CounterVec
	duration     prometheus.Histogram
	certReloads  *prometheus.CounterVec
	certNotAfter prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		pods: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "egressd_inject_pods_total",
			Help: "Pod admission reviews by result: mutated (a patch was returned), skipped (not selected, opted out or already injected) or error.",
		}, []string{"result"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "egressd_inject_requests_rejected_total",
			Help: "Requests to /mutate answered with an HTTP error because they were not a usable AdmissionReview, by reason.",
		}, []string{"reason"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "egressd_inject_review_duration_seconds",
			Help: "Time to read, decide and answer one AdmissionReview.",
			// The API server's timeoutSeconds is a few seconds; anything
			// near it matters more than sub-millisecond detail.
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}),
		certReloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "egressd_inject_cert_reloads_total",
			Help: "Serving certificate loads from disk after the files changed, by result (success or error).",
		}, []string{"result"}),
		certNotAfter: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "egressd_inject_cert_not_after_timestamp_seconds",
			Help: "Expiry (NotAfter) of the serving certificate in use, as a Unix timestamp.",
		}),
	}
	for _, c := range []prometheus.Collector{m.pods, m.rejected, m.duration, m.certReloads, m.certNotAfter} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register metrics: %w", err)
		}
	}
	// Pre-create the label sets so rate() works from the first scrape.
	for _, r := range []string{resultMutated, resultSkipped, resultError} {
		m.pods.WithLabelValues(r)
	}
	for _, r := range []string{rejectMethod, rejectContentType, rejectTooLarge, rejectMalformed} {
		m.rejected.WithLabelValues(r)
	}
	for _, r := range []string{"success", "error"} {
		m.certReloads.WithLabelValues(r)
	}
	return m, nil
}
