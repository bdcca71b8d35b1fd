package proxy

import (
	"errors"
	"time"

	"github.com/egressd/egressd/acl"
	"github.com/egressd/egressd/metrics"
)

// observer is the one place where the proxy meets package metrics, so the
// request path reads as mechanism and every metric call site is one line.
// A nil *metrics.Metrics records nothing.
type observer struct{ m *metrics.Metrics }

func (o observer) SetConnectionLimit(n int) { o.m.SetConnectionLimit(n) }

func (o observer) LimitRejected(scope metrics.LimitScope, tenant string) {
	o.m.LimitRejected(scope, tenant)
}

func (o observer) ConnOpened() *metrics.Conn { return o.m.ConnOpened() }

// ProxyHeader counts a header outcome; HeaderNone (no header expected or
// sent) is not counted.
func (o observer) ProxyHeader(r metrics.HeaderResult) { o.m.ProxyHeader(r) }

func (o observer) AuthFailed(tenant string) { o.m.AuthFailed(tenant) }

func (o observer) Revoked(tenant string) { o.m.Revoked(tenant) }

func (o observer) TunnelOpened(tenant string) metrics.Tunnel { return o.m.TunnelOpened(tenant) }

func (o observer) SpliceLearned(tenant string) { o.m.SpliceLearned(tenant) }

// Request counts a finished request from its access-log entry, so the log
// line and the counters always agree.
func (o observer) Request(e *entry) {
	if o.m == nil {
		return
	}
	k := kinds[e.kind]
	r := metrics.Request{
		Tenant:    e.dec.Tenant,
		Kind:      metrics.KindHTTP,
		Method:    e.method,
		Decision:  e.dec,
		Status:    e.status,
		Duration:  time.Since(e.start),
		Inspected: k.inspected,
	}
	if k.tunnel {
		r.Kind = metrics.KindConnect // tunnel bytes are counted by metrics.Tunnel
	} else {
		r.BytesUp, r.BytesDown = e.up, e.down
	}
	switch outcomes[e.outcome].class {
	case classLimit:
		r.Refused = metrics.RefusedLimit
	case classTLS:
		r.Refused = metrics.RefusedTLS
	case classFailed:
		r.Failed = e.dec.Action == acl.Allow
	}
	o.m.ObserveRequest(r)
}

func (s *Server) observeDial(dns, connect time.Duration, err error) {
	m := s.metrics.m
	if dns > 0 {
		m.ObserveDNS(dns)
	}
	var de *DialError
	switch {
	case err == nil:
		m.ObserveDial(connect)
	case errors.As(err, &de) && de.Step == DialStepDNS:
		m.DialFailed(metrics.DialDNS)
	case errors.As(err, &de) && de.Step == DialStepSSRF:
		m.DialFailed(metrics.DialSSRF)
	default:
		m.DialFailed(metrics.DialFailureOf(err))
	}
}
