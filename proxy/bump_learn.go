package proxy

import (
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/egressd/egressd/acl"
)

// spliceLearner is learned splicing (tls_inspection.learn_splice, issue
// 17): it counts, per tenant and host, the inspected handshakes the
// tenant's clients refused with a certificate alert, and once a host has
// reached the tenant's threshold it is spliced until the TTL runs out. A
// pinned app then recovers on its own instead of needing a config change
// at 3 a.m.; the operator sees a warn line and a metric and can make it
// permanent (tls_inspection.splice) or fix the client.
//
// The state lives on the Server, not in the policy, so a reload keeps what
// was learned; whether it applies is asked of the current policy on every
// tunnel (Inspection.Learn), so turning learning off, or naming the host
// in bump:, takes effect at once.
type spliceLearner struct {
	mu    sync.Mutex
	hosts map[learnKey]*learnState
}

type learnKey struct{ tenant, host string }

type learnState struct {
	fails   int
	since   time.Time // first refusal counted in this round
	spliced time.Time // zero until learned; then until when it is spliced
}

// maxLearnedHosts bounds the learner's memory (about 100 bytes an entry):
// refusals are client-driven, so a client naming ever new hosts must not
// grow it without end. When full, expired entries go first, then the
// newcomer is not counted.
const maxLearnedHosts = 10000

// splices reports whether host, bumped for tenant under learn, is to be
// spliced because it was learned.
func (l *spliceLearner) splices(tenant, host string, learn acl.LearnSplice, now time.Time) bool {
	if learn.After == 0 {
		return false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	st, ok := l.hosts[learnKey{tenant, host}]
	if !ok || st.spliced.IsZero() {
		return false
	}
	if now.After(st.spliced) {
		delete(l.hosts, learnKey{tenant, host})
		return false
	}
	return true
}

// refused counts one certificate refusal and reports whether it made host
// learned (exactly once per round), with the time it is spliced until.
func (l *spliceLearner) refused(tenant, host string, learn acl.LearnSplice, now time.Time) (bool, time.Time) {
	if learn.After == 0 {
		return false, time.Time{}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	k := learnKey{tenant, host}
	st, ok := l.hosts[k]
	if ok && (!st.spliced.IsZero() && now.After(st.spliced) || st.spliced.IsZero() && now.Sub(st.since) > learn.TTL) {
		ok = false // a finished splice, or refusals too old to count
	}
	if !ok {
		if l.hosts == nil {
			l.hosts = map[learnKey]*learnState{}
		}
		if len(l.hosts) >= maxLearnedHosts && !l.evictExpired(now) {
			return false, time.Time{}
		}
		st = &learnState{since: now}
		l.hosts[k] = st
	}
	if !st.spliced.IsZero() {
		return false, st.spliced // already learned; a refusal in flight
	}
	st.fails++
	if st.fails < learn.After {
		return false, time.Time{}
	}
	st.spliced = now.Add(learn.TTL)
	return true, st.spliced
}

// evictExpired drops finished entries and reports whether there is room.
// Entries of other tenants may count under another TTL, so an unlearned
// entry is dropped only when older than the longest TTL allowed.
func (l *spliceLearner) evictExpired(now time.Time) bool {
	for k, st := range l.hosts {
		if !st.spliced.IsZero() && now.After(st.spliced) || st.spliced.IsZero() && now.Sub(st.since) > acl.MaxLearnTTL {
			delete(l.hosts, k)
		}
	}
	return len(l.hosts) < maxLearnedHosts
}

// learnedSplice is planTunnel's last word on a bump: a host learned for
// this tenant is spliced instead.
func (c *clientConn) learnedSplice(e *entry, host string) bool {
	ins := c.pol.Inspection(e.dec.Tenant, host)
	if !c.s.learn.splices(e.dec.Tenant, host, ins.Learn, time.Now()) {
		return false
	}
	if e.outcome == outcomeNone { // an SNI report-only note stays
		e.outcome = outcomeLearnedSplice
	}
	return true
}

// clientRefusedCertificate counts a client's refusal of the minted leaf
// for learned splicing, and warns when it makes the host spliced.
func (c *clientConn) clientRefusedCertificate(e *entry, host string) {
	tenant := e.dec.Tenant
	learned, until := c.s.learn.refused(tenant, host, c.pol.Inspection(tenant, host).Learn, time.Now())
	if !learned {
		return
	}
	c.s.metrics.SpliceLearned(tenant)
	c.s.log.Warn("TLS inspection learned to splice a host: its clients keep rejecting the inspection certificate (pinned or missing the corporate CA); its tunnels are NOT inspected until the TTL ends",
		zap.String(fieldRequestID, e.reqID), zap.String(fieldTenant, tenant), zap.String(fieldHost, host),
		zap.Time("spliced_until", until))
}
