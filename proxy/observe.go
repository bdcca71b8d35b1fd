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

func (o observer) LimitRejected(scope, tenant string) {
	s := metrics.ScopeTenant
	if scope == "global" {
		s = metrics.ScopeGlobal
	}
	o.m.LimitRejected(s, tenant)
}

func (o observer) ConnOpened() *metrics.Conn { return o.m.ConnOpened() }

var headerResults = map[string]metrics.HeaderResult{
	headerOK: metrics.HeaderOK, headerLocal: metrics.HeaderLocal, headerMissing: metrics.HeaderMissing,
	headerMalformed: metrics.HeaderMalformed, headerUntrusted: metrics.HeaderUntrusted, headerTimeout: metrics.HeaderTimeout,
}

func (o observer) ProxyHeader(outcome string) {
	if r, ok := headerResults[outcome]; ok {
		o.m.ProxyHeader(r)
	}
}

func (o observer) AuthFailed(tenant string) { o.m.AuthFailed(tenant) }

func (o observer) TunnelOpened(tenant string) metrics.Tunnel { return o.m.TunnelOpened(tenant) }

// Request counts a finished request from its access-log entry, so the log
// line and the counters always agree.
func (o observer) Request(e *entry) {
	if o.m == nil {
		return
	}
	r := metrics.Request{
		Tenant:    e.dec.Tenant,
		Kind:      metrics.KindHTTP,
		Method:    e.method,
		Decision:  e.dec,
		Status:    e.status,
		Duration:  time.Since(e.start),
		Inspected: e.kind == "bumped",
	}
	if e.kind == "connect" || e.kind == "bumped_tunnel" {
		r.Kind = metrics.KindConnect // tunnel bytes are counted by metrics.Tunnel
	} else {
		r.BytesUp, r.BytesDown = e.up, e.down
	}
	switch e.errText {
	case "", "acl", "auth", "ssrf", "not_tls_spliced", "sni_would_deny", "sni_unchecked", "client_aborted", "client_gone":
	case "limit":
		r.Refused = metrics.RefusedLimit
	case "sni_denied", "sni_inspection_mismatch", "not_tls_refused", "client_tls", "client_hello", "client_hello_timeout":
		r.Refused = metrics.RefusedTLS
	default:
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
	case errors.As(err, &de) && de.Step == "dns":
		m.DialFailed(metrics.DialDNS)
	case errors.As(err, &de) && de.Step == "ssrf":
		m.DialFailed(metrics.DialSSRF)
	default:
		m.DialFailed(metrics.DialFailureOf(err))
	}
}
