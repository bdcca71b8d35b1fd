package proxy

import (
	"net/netip"

	"go.uber.org/zap"

	"github.com/egressd/egressd/acl"
)

// grant is what a client connection currently holds by a decision: its
// tunnel, or the last request of a keep-alive connection. A reload with
// proxy.revoke_on_reload re-decides it and closes the connection when
// the new policy would refuse it (issue 13, item 3).
type grant struct {
	reqID    string
	kind     entryKind
	tenant   string
	target   acl.Target
	creds    acl.Credentials
	sni      string     // a tunnel's SNI when it names another host than CONNECT
	upstream netip.Addr // the address a tunnel dialed, checked again by CheckDial
}

// setGrant records what the connection now holds. Strings in a Target
// and Credentials are copies, never slices into a reused buffer.
func (c *clientConn) setGrant(g grant) {
	c.grantMu.Lock()
	c.grant, c.hasGrant = g, true
	c.grantMu.Unlock()
}

func (c *clientConn) updateGrant(f func(*grant)) {
	c.grantMu.Lock()
	if c.hasGrant {
		f(&c.grant)
	}
	c.grantMu.Unlock()
}

func (c *clientConn) currentGrant() (grant, bool) {
	c.grantMu.Lock()
	defer c.grantMu.Unlock()
	return c.grant, c.hasGrant
}

// stillAllowed re-decides g for id under p, as the request path decided
// it: the target, then the SNI under sni_check enforce, then the dialed
// address. A changed tenant counts as a refusal, since the connection's
// limits, metrics and log line belong to the tenant that was decided.
// A re-decision that needs bcrypt can also fail for want of a slot
// (acl/auth.go); that closes the connection too, which errs closed.
func stillAllowed(p Policy, id acl.Identity, g grant) (acl.Decision, bool) {
	d := p.Decide(id, g.creds, g.target)
	if d.Action != acl.Allow || d.Tenant != g.tenant {
		return d, false
	}
	if g.sni != "" && p.Inspection(g.tenant, g.target.Host).SNICheck == acl.SNIEnforce {
		sd := p.Decide(id, g.creds, acl.Target{Scheme: "https", Host: g.sni, Port: g.target.Port, Method: "CONNECT"})
		if sd.Action != acl.Allow || sd.WouldDeny {
			return sd, false
		}
	}
	if g.upstream.IsValid() {
		if dd := p.CheckDial(g.tenant, g.upstream, g.target); dd.Action != acl.Allow {
			return dd, false
		}
	}
	return d, true
}

// revoke closes every connection whose grant p no longer allows and
// reports how many it closed. It runs on the reloading goroutine; the
// connections' own goroutines see their socket closed and end as after
// any close, with the access line of a tunnel saying "revoked".
func (s *Server) revoke(p Policy) int {
	s.mu.Lock()
	conns := make([]*clientConn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	n := 0
	for _, c := range conns {
		g, ok := c.currentGrant()
		if !ok {
			continue
		}
		d, ok := stillAllowed(p, c.id, g)
		if ok {
			continue
		}
		c.revoked.Store(true)
		c.forceClose()
		n++
		s.metrics.Revoked(g.tenant)
		s.log.Info("connection revoked by policy reload", zap.String(fieldRequestID, g.reqID),
			zap.String(fieldTenant, g.tenant), zap.Stringer("kind", g.kind),
			zap.String(fieldHost, g.target.Host), zap.Uint16("port", g.target.Port),
			zap.String("sni", g.sni), zap.Stringer("decision", d.Action), zap.String("rule", d.Rule))
	}
	return n
}
