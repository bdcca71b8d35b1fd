// Package metrics is egressd's Prometheus instrumentation: every metric name,
// label, Help string and bucket layout lives in this file, and the proxy
// records events through one-line method calls on *Metrics.
//
// Nothing here touches the global registry. Tenant label values are bounded:
// they come from SetTenants plus "unknown", never from request data, so a
// client cannot grow the series count by inventing tenants, hosts or paths.
//
// Every recording method is a no-op on a nil *Metrics, so proxy tests that do
// not care about metrics can leave Deps.Metrics unset.
package metrics

import (
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

const namespace = "egressd"

// Label names. Tenant matches the access log's "tenant" field so a spike in a
// panel can be followed to log lines.
const (
	labelTenant      = "tenant"
	labelMethod      = "method"
	labelDecision    = "decision"
	labelStatusClass = "status_class"
	labelKind        = "kind"
	labelReason      = "reason"
	labelDirection   = "direction"
	labelResult      = "result"
	labelScope       = "scope"
	labelCause       = "cause"
	labelHash        = "hash"
	labelVersion     = "version"
	labelGoVersion   = "goversion"
)

// Bucket layouts, in seconds. Each is chosen for what the histogram measures
// rather than prometheus.DefBuckets, whose 10 s ceiling is too short for
// tunnels and too coarse below 5 ms for DNS and dials.
var (
	// Requests go to the internet: same-region Azure endpoints answer in a
	// few ms, other continents in 100-300 ms, slow APIs in seconds. The top
	// buckets sit at typical upstream timeouts (30 s, 60 s) so timeouts show
	// as their own bucket instead of hiding in +Inf. For CONNECT this is the
	// time until the tunnel is established (the 200 is sent).
	requestBuckets = []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}

	// Tunnels live from a single TLS exchange (under a second) to long polls
	// and streams (hours). 240 s and 300 s bracket the Private Link Service
	// idle timeout (about 4-5 min): a pile-up there means keepalives are not
	// reaching the PLS and flows are being dropped.
	tunnelBuckets = []float64{.1, .5, 1, 5, 15, 60, 120, 240, 300, 600, 1800, 3600, 4 * 3600, 12 * 3600}

	// A TCP connect is one round trip: sub-ms inside the region, tens of ms
	// across regions. 10 s is the longest dial timeout we expect to configure.
	dialBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

	// Cached answers (node-local or CoreDNS cache) take well under 1 ms;
	// recursive lookups tens of ms; 5 s is the resolver's default timeout
	// (resolv.conf "timeout:5"), so a spike there means a lost UDP answer.
	dnsBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5}

	// Minting is key generation plus one signature: ECDSA P-256 takes well
	// under 1 ms, RSA-2048 key generation 50-500 ms with a long tail. The
	// layout separates the two and shows when minting stalls handshakes.
	mintBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5}
)

// BuildInfo is exported as egressd_build_info. GoVersion defaults to
// runtime.Version() when empty.
type BuildInfo struct {
	Version   string
	GoVersion string
}

// Metrics holds egressd's collectors. Build it with New; the zero value is
// not usable, but a nil *Metrics is (it records nothing).
type Metrics struct {
	requests        *prometheus.CounterVec
	requestDuration *prometheus.HistogramVec
	denials         *prometheus.CounterVec

	tunnels        *prometheus.CounterVec
	openTunnels    *prometheus.GaugeVec
	tunnelDuration *prometheus.HistogramVec
	bytes          *prometheus.CounterVec

	connections       prometheus.Counter
	openConnections   prometheus.Gauge
	tenantConnections *prometheus.GaugeVec
	connectionLimit   prometheus.Gauge

	dialDuration prometheus.Histogram
	dnsDuration  prometheus.Histogram
	dialErrors   [numDialFailures]prometheus.Counter

	proxyHeaders [numCountedHeaders]prometheus.Counter

	limitRejections *prometheus.CounterVec
	authFailures    *prometheus.CounterVec

	reloads           [2]prometheus.Counter // index 0 success, 1 failure
	reloadCauses      [numReloadCauses]prometheus.Counter
	revoked           *prometheus.CounterVec
	lastReloadSuccess prometheus.Gauge
	lastReloadOK      prometheus.Gauge
	configInfo        *prometheus.GaugeVec
	configMu          sync.Mutex // serialises hash swaps in configInfo
	configHash        string

	mintDuration prometheus.Histogram
	cacheHits    prometheus.Counter
	cacheMisses  prometheus.Counter
	cacheEntries prometheus.Gauge
	caExpiry     prometheus.Gauge
	bumped       *prometheus.CounterVec
	learned      *prometheus.CounterVec

	// tenants maps configured names to their cached children; swapped
	// whole by SetTenants so the hot path reads it without a lock.
	tenants   atomic.Pointer[map[string]*tenant]
	tenantsMu sync.Mutex // serialises SetTenants
	unknown   *tenant

	ruleHits *ruleHits // egressd_rule_hits_total, rulehits.go
}

// New builds every collector and registers it on reg. It panics if reg
// already holds egressd collectors, which is a wiring bug, not a runtime
// condition. Go runtime and process collectors are not included: use
// NewRegistry for a registry that has them.
func New(reg prometheus.Registerer, build BuildInfo) *Metrics {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "requests_total",
			Help: "Proxied requests by tenant, method class, decision (allow, deny, would_deny, auth_required, error) and response status class. CONNECT counts once, when the tunnel is answered.",
		}, []string{labelTenant, labelMethod, labelDecision, labelStatusClass}),
		requestDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Name: "request_duration_seconds",
			Help:    "Time from reading a request head to finishing the response (kind=http) or to answering CONNECT (kind=connect).",
			Buckets: requestBuckets,
		}, []string{labelTenant, labelKind}),
		denials: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "denials_total",
			Help: "Requests refused by tenant and reason (rule, default, no-tenant, auth, ssrf, limit, tls, none).",
		}, []string{labelTenant, labelReason}),

		tunnels: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "tunnels_total",
			Help: "CONNECT tunnels established, by tenant.",
		}, []string{labelTenant}),
		openTunnels: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace, Name: "open_tunnels",
			Help: "CONNECT tunnels currently open, by tenant.",
		}, []string{labelTenant}),
		tunnelDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Name: "tunnel_duration_seconds",
			Help:    "Lifetime of closed CONNECT tunnels, by tenant.",
			Buckets: tunnelBuckets,
		}, []string{labelTenant}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "transferred_bytes_total",
			Help: "Payload bytes relayed, by tenant and direction (up: client to upstream, down: upstream to client).",
		}, []string{labelTenant, labelDirection}),

		connections: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Name: "connections_total",
			Help: "Client connections accepted on the proxy port, including load balancer probes; its rate is the connection churn that uses PLS SNAT ports.",
		}),
		openConnections: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace, Name: "open_connections",
			Help: "Client connections currently open on the proxy port, identified or not; compare with egressd_connection_limit.",
		}),
		tenantConnections: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace, Name: "tenant_open_connections",
			Help: "Client connections currently open whose tenant is known (after their first request), by tenant.",
		}, []string{labelTenant}),
		connectionLimit: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace, Name: "connection_limit",
			Help: "Configured maximum of concurrent client connections; 0 means unlimited.",
		}),

		dialDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: namespace, Name: "upstream_dial_duration_seconds",
			Help:    "Time to establish successful TCP connections to upstreams, after DNS.",
			Buckets: dialBuckets,
		}),
		dnsDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: namespace, Name: "dns_lookup_duration_seconds",
			Help:    "Time spent resolving upstream host names, successful or not.",
			Buckets: dnsBuckets,
		}),

		limitRejections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "limit_rejections_total",
			Help: "Connections or requests rejected by a limit, by scope (global: proxy.max_connections or its probe headroom; tenant: the request rate budget; tenant_connections: the tenant's connection cap) and tenant (unknown when rejected before identification).",
		}, []string{labelScope, labelTenant}),
		authFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "auth_failures_total",
			Help: "Proxy-Authorization credentials presented and rejected, by tenant.",
		}, []string{labelTenant}),

		lastReloadSuccess: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace, Name: "config_last_reload_success_timestamp_seconds",
			Help: "Unix time of the last successful configuration load.",
		}),
		lastReloadOK: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace, Name: "config_last_reload_successful",
			Help: "1 if the last configuration load succeeded, 0 if it failed and the previous configuration is still in force.",
		}),
		configInfo: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace, Name: "config_info",
			Help: "Always 1; the hash label identifies the configuration in force.",
		}, []string{labelHash}),

		mintDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: namespace, Name: "tls_mint_duration_seconds",
			Help:    "Time to mint a leaf certificate for TLS inspection (key generation and signing).",
			Buckets: mintBuckets,
		}),
		cacheHits: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Name: "tls_cert_cache_hits_total",
			Help: "Leaf certificate lookups served from the cache.",
		}),
		cacheMisses: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Name: "tls_cert_cache_misses_total",
			Help: "Leaf certificate lookups that had to mint (or wait for a mint).",
		}),
		cacheEntries: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace, Name: "tls_cert_cache_entries",
			Help: "Leaf certificates currently cached.",
		}),
		caExpiry: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace, Name: "tls_ca_cert_expiry_timestamp_seconds",
			Help: "Unix time at which the inspection CA certificate expires (its NotAfter); 0 when TLS inspection is off.",
		}),
		bumped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "tls_bumped_requests_total",
			Help: "Requests decrypted and inspected inside CONNECT tunnels, by tenant.",
		}, []string{labelTenant}),
		learned: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "tls_learned_splices_total",
			Help: "Hosts TLS inspection started splicing after the tenant's clients repeatedly rejected the inspection certificate (tls_inspection.learn_splice), by tenant.",
		}, []string{labelTenant}),
	}

	dialErrors := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "upstream_dial_errors_total",
		Help: "Upstream connections that could not be made, by reason (dns, refused, timeout, ssrf, other).",
	}, []string{labelReason})
	for i := range m.dialErrors {
		m.dialErrors[i] = dialErrors.WithLabelValues(DialFailure(i).String())
	}
	proxyHeaders := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "proxy_protocol_headers_total",
		Help: "PROXY protocol header outcomes on accepted connections (ok, local, missing, malformed, untrusted, timeout); local is a load balancer health probe.",
	}, []string{labelResult})
	for i := range m.proxyHeaders {
		m.proxyHeaders[i] = proxyHeaders.WithLabelValues(HeaderResult(i).String())
	}
	reloads := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "config_reloads_total",
		Help: "Configuration loads (startup and reloads) by result (success, failure).",
	}, []string{labelResult})
	m.reloads[0] = reloads.WithLabelValues("success")
	m.reloads[1] = reloads.WithLabelValues("failure")
	reloadCauses := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "config_reload_triggers_total",
		Help: "Reloads attempted after startup, by cause (config: the config file's content changed; referenced_file: the content of a file it references changed, such as a password_file or the CA; signal: SIGHUP).",
	}, []string{labelCause})
	for i := range m.reloadCauses {
		m.reloadCauses[i] = reloadCauses.WithLabelValues(ReloadCause(i).String())
	}
	m.revoked = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "revoked_connections_total",
		Help: "Open tunnels and keep-alive client connections closed after a policy reload because the new policy denies them (proxy.revoke_on_reload), by tenant.",
	}, []string{labelTenant})

	buildInfo := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: namespace, Name: "build_info",
		Help: "Always 1; labels carry the egressd version and the Go version it was built with.",
	}, []string{labelVersion, labelGoVersion})
	if build.GoVersion == "" {
		build.GoVersion = runtime.Version()
	}
	buildInfo.WithLabelValues(build.Version, build.GoVersion).Set(1)

	reg.MustRegister(
		m.requests, m.requestDuration, m.denials,
		m.tunnels, m.openTunnels, m.tunnelDuration, m.bytes,
		m.connections, m.openConnections, m.tenantConnections, m.connectionLimit,
		m.dialDuration, m.dnsDuration, dialErrors,
		proxyHeaders,
		m.limitRejections, m.authFailures,
		reloads, reloadCauses, m.revoked, m.lastReloadSuccess, m.lastReloadOK, m.configInfo,
		m.mintDuration, m.cacheHits, m.cacheMisses, m.cacheEntries, m.caExpiry, m.bumped, m.learned,
		buildInfo,
	)
	m.ruleHits = newRuleHits()
	reg.MustRegister(m.ruleHits.vec)

	m.unknown = m.newTenant(unknownTenant)
	empty := map[string]*tenant{}
	m.tenants.Store(&empty)
	return m
}
