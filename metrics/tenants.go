package metrics

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// unknownTenant labels every tenant value that is not configured, including
// "". It keeps the tenant label bounded whatever clients send.
const unknownTenant = "unknown"

// tenant caches one tenant's children so the hot path does an atomic load
// and an Inc instead of WithLabelValues (label hashing, a map lookup and a
// variadic slice) per event. Single-label children are created up front,
// which also exports zero series that dashboards and rate() need; the
// multi-label families are filled lazily so an idle tenant does not export
// hundreds of zero series.
type tenant struct {
	m    *Metrics
	name string
	// retired is set when SetTenants drops the tenant; see createChild.
	retired atomic.Bool

	tunnels         prometheus.Counter
	openTunnels     prometheus.Gauge
	openConnections prometheus.Gauge
	bytesUp         prometheus.Counter
	bytesDown       prometheus.Counter
	authFailures    prometheus.Counter
	revoked         prometheus.Counter
	limitRejections [numScopes]prometheus.Counter

	requests       [numMethods][numDecisions][numStatusClasses]atomic.Pointer[prometheus.Counter]
	denials        [numReasons]atomic.Pointer[prometheus.Counter]
	duration       [numKinds]atomic.Pointer[prometheus.Observer]
	tunnelDuration atomic.Pointer[prometheus.Observer]
	bumped         atomic.Pointer[prometheus.Counter]
}

func (m *Metrics) newTenant(name string) *tenant {
	t := &tenant{
		m:               m,
		name:            name,
		tunnels:         m.tunnels.WithLabelValues(name),
		openTunnels:     m.openTunnels.WithLabelValues(name),
		openConnections: m.tenantConnections.WithLabelValues(name),
		bytesUp:         m.bytes.WithLabelValues(name, dirUp),
		bytesDown:       m.bytes.WithLabelValues(name, dirDown),
		authFailures:    m.authFailures.WithLabelValues(name),
		revoked:         m.revoked.WithLabelValues(name),
	}
	for s := range t.limitRejections {
		t.limitRejections[s] = m.limitRejections.WithLabelValues(LimitScope(s).String(), name)
	}
	return t
}

// lookup never allocates: a map read on the current snapshot.
func (m *Metrics) lookup(name string) *tenant {
	if t, ok := (*m.tenants.Load())[name]; ok {
		return t
	}
	return m.unknown
}

// SetTenants declares the configured tenant names; any other name passed to a
// recording method is counted as "unknown". Call it at startup and on every
// config reload; it is safe to call while events are being recorded.
//
// Tenants that stay keep their series and caches. Tenants that are dropped
// have their series deleted, so a removed tenant leaves dashboards instead of
// lingering at its last value; events still in flight for it (an open tunnel
// closing later) update detached children that are no longer exported, so
// gauges never go negative when the tenant is added back.
func (m *Metrics) SetTenants(names []string) {
	if m == nil {
		return
	}
	m.tenantsMu.Lock()
	defer m.tenantsMu.Unlock()

	old := *m.tenants.Load()
	next := make(map[string]*tenant, len(names))
	for _, name := range names {
		if name == "" || name == unknownTenant {
			continue // both already mean the unknown tenant
		}
		if _, dup := next[name]; dup {
			continue
		}
		if t, ok := old[name]; ok {
			next[name] = t
		} else {
			next[name] = m.newTenant(name)
		}
	}
	m.tenants.Store(&next)

	for name, t := range old {
		if _, kept := next[name]; kept {
			continue
		}
		// Mark before deleting: a recorder that loaded the old snapshot
		// and creates a child after the delete then sees retired and
		// deletes its own series (createChild).
		t.retired.Store(true)
		m.deleteTenantSeries(name)
	}
}

func (m *Metrics) deleteTenantSeries(name string) {
	match := prometheus.Labels{labelTenant: name}
	m.requests.DeletePartialMatch(match)
	m.requestDuration.DeletePartialMatch(match)
	m.denials.DeletePartialMatch(match)
	m.tunnels.DeletePartialMatch(match)
	m.openTunnels.DeletePartialMatch(match)
	m.tunnelDuration.DeletePartialMatch(match)
	m.bytes.DeletePartialMatch(match)
	m.tenantConnections.DeletePartialMatch(match)
	m.limitRejections.DeletePartialMatch(match)
	m.revoked.DeletePartialMatch(match)
	m.authFailures.DeletePartialMatch(match)
	m.bumped.DeletePartialMatch(match)
	m.learned.DeletePartialMatch(match)
}

// vec is what createChild needs from a CounterVec or HistogramVec.
type vec[T any] interface {
	WithLabelValues(lvs ...string) T
	DeleteLabelValues(lvs ...string) bool
}

// createChild is the slow path of the accessors below, which load their slot
// first: building the variadic label slice escapes to the heap, so it must
// not happen per event. Two goroutines racing here get the same child from
// the vec, so either store wins harmlessly. The retired check closes the
// window in which a recorder holding a stale snapshot would re-create a
// deleted tenant's series.
func createChild[T any](t *tenant, slot *atomic.Pointer[T], v vec[T], lvs ...string) T {
	c := v.WithLabelValues(lvs...)
	slot.Store(&c)
	if t.retired.Load() {
		v.DeleteLabelValues(lvs...)
	}
	return c
}

func (t *tenant) request(method, decision, status int) prometheus.Counter {
	slot := &t.requests[method][decision][status]
	if c := slot.Load(); c != nil {
		return *c
	}
	return createChild(t, slot, vec[prometheus.Counter](t.m.requests),
		t.name, methodNames[method], decisionNames[decision], statusNames[status])
}

func (t *tenant) denial(reason int) prometheus.Counter {
	slot := &t.denials[reason]
	if c := slot.Load(); c != nil {
		return *c
	}
	return createChild(t, slot, vec[prometheus.Counter](t.m.denials), t.name, reasonNames[reason])
}

func (t *tenant) requestDuration(k Kind) prometheus.Observer {
	if k >= numKinds {
		k = KindHTTP
	}
	slot := &t.duration[k]
	if o := slot.Load(); o != nil {
		return *o
	}
	return createChild(t, slot, vec[prometheus.Observer](t.m.requestDuration), t.name, kindNames[k])
}

func (t *tenant) tunnelLifetime() prometheus.Observer {
	if o := t.tunnelDuration.Load(); o != nil {
		return *o
	}
	return createChild(t, &t.tunnelDuration, vec[prometheus.Observer](t.m.tunnelDuration), t.name)
}

func (t *tenant) bumpedRequests() prometheus.Counter {
	if c := t.bumped.Load(); c != nil {
		return *c
	}
	return createChild(t, &t.bumped, vec[prometheus.Counter](t.m.bumped), t.name)
}
