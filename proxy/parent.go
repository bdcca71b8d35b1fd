package proxy

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"time"

	"github.com/egressd/egressd/acl"
)

// Parent proxies (upstream_proxy). egressd still decides every request by
// name against the tenant's rules; what changes is what it dials: the
// parent, which must itself be a destination the tenant may reach, with
// every address it resolves to checked like any upstream's. Nothing here
// reads HTTP_PROXY or any other environment variable: a parent is only
// ever the one the config names.

var (
	errParentAuth    = errors.New("proxy: the parent proxy rejected egressd's credentials (407)")
	errParentRefused = errors.New("proxy: the parent proxy refused the request")
)

// ParentError is a parent proxy's refusal; Status is what it answered.
type ParentError struct {
	Parent string
	Status int
	Err    error
}

func (e *ParentError) Error() string {
	return fmt.Sprintf("parent %s answered %d: %v", e.Parent, e.Status, e.Err)
}

func (e *ParentError) Unwrap() error { return e.Err }

// dialParent connects to up for the request in e, decided under pol.
func (s *Server) dialParent(pol Policy, e *entry, up *acl.UpstreamProxy) (net.Conn, netip.AddrPort, error) {
	tenant := e.dec.Tenant
	if d := pol.CheckParent(tenant, up); d.Action != acl.Allow {
		return nil, netip.AddrPort{}, &DialError{Step: DialStepSSRF, Host: up.Target.Host, Decision: d,
			Err: fmt.Errorf("parent proxy %s is %s", up.URL, d.Rule)}
	}
	// A destination given as an address is known without DNS, so it gets
	// the dial check here; names are resolved by the parent.
	if t := e.target; t.Addr.IsValid() {
		if d := dialCheck(pol, e)(t.Addr.Unmap()); d.Action != acl.Allow {
			return nil, netip.AddrPort{}, &DialError{Step: DialStepSSRF, Host: t.Host, Decision: d,
				Err: fmt.Errorf("%s is %s", t.Addr, d.Rule)}
		}
	}
	pt := up.Target
	check := func(ip netip.Addr) acl.Decision { return pol.CheckDial(tenant, ip, pt) }
	return s.dialer.dialTarget(context.Background(), pt, check)
}

// dialTunnel is the upstream of a CONNECT: the destination itself, or a
// tunnel to it through the tenant's parent proxy.
func (c *clientConn) dialTunnel(e *entry, check func(netip.Addr) acl.Decision) (net.Conn, netip.AddrPort, error) {
	return c.s.dialDirectOrParent(c.pol, e, check)
}

// dialDirectOrParent reaches e.target for a tunnel or an inspected
// tunnel's redial: directly through check, or through e's parent proxy.
// Every path that dials a tunnel's destination goes through here, so no
// redial can bypass a parent the policy named.
func (s *Server) dialDirectOrParent(pol Policy, e *entry, check func(netip.Addr) acl.Decision) (net.Conn, netip.AddrPort, error) {
	if up := e.dec.Upstream; up != nil {
		return s.connectViaParent(pol, e, up)
	}
	return s.dialer.dialTarget(context.Background(), e.target, check)
}

// connectViaParent opens a CONNECT tunnel to e.target through up, by the
// checked name (the parent resolves it). A 407 means egressd's own
// credentials for the parent are wrong: it is answered as a gateway
// error, never passed on, since the client's credentials are egressd's.
func (s *Server) connectViaParent(pol Policy, e *entry, up *acl.UpstreamProxy) (net.Conn, netip.AddrPort, error) {
	conn, ap, err := s.dialParent(pol, e, up)
	if err != nil {
		return nil, ap, err
	}
	var hb [300]byte
	authority := appendAuthority(hb[:0], acl.Target{Host: e.target.Host, Addr: e.target.Addr, Port: e.target.Port})
	var req bytes.Buffer
	req.WriteString("CONNECT ")
	req.Write(authority)
	req.WriteString(" HTTP/1.1\r\nHost: ")
	req.Write(authority)
	req.WriteString("\r\n")
	if up.Authorization != "" {
		req.WriteString("Proxy-Authorization: " + up.Authorization + "\r\n")
	}
	req.WriteString("\r\n")
	conn.SetDeadline(time.Now().Add(s.cfg.ResponseHeaderTimeout))
	if _, err := conn.Write(req.Bytes()); err != nil {
		conn.Close()
		return nil, ap, &DialError{Step: DialStepConnect, Host: up.Target.Host, Err: err}
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
	if err != nil {
		conn.Close()
		if isTimeout(err) {
			return nil, ap, fmt.Errorf("parent %s: %w", up.URL, errUpstreamTimeout)
		}
		return nil, ap, &ParentError{Parent: up.URL, Err: fmt.Errorf("%w: %v", errParentRefused, err)}
	}
	switch {
	case resp.StatusCode == http.StatusProxyAuthRequired:
		conn.Close()
		return nil, ap, &ParentError{Parent: up.URL, Status: resp.StatusCode, Err: errParentAuth}
	case resp.StatusCode/100 != 2:
		conn.Close()
		return nil, ap, &ParentError{Parent: up.URL, Status: resp.StatusCode, Err: errParentRefused}
	}
	conn.SetDeadline(time.Time{})
	if n := br.Buffered(); n > 0 {
		// The destination spoke first and its bytes came with the 200.
		pending, _ := br.Peek(n)
		return &prefixConn{Conn: conn, pending: bytes.Clone(pending)}, ap, nil
	}
	return conn, ap, nil
}

// takeUpstream is c.ups.take, unless the tenant's decision names a parent
// for a plain request: then a fresh connection to the parent (absolute
// form for http://, a CONNECT tunnel and TLS for https://). Connections
// through a parent are never pooled. Requests inside an inspected tunnel
// keep the tunnel's own upstream, which already goes through the parent.
func (c *clientConn) takeUpstream(e *entry, key poolKey, check func(netip.Addr) acl.Decision) (*upConn, bool, error) {
	up := e.dec.Upstream
	if bs, ok := c.ups.(*bumpState); ok && up != nil && bs.up == nil {
		// The origin closed the inspected tunnel's connection: the redial
		// goes through the parent too, and is verified again.
		conn, ap, err := c.s.connectViaParent(c.pol, e, up)
		if err != nil {
			return nil, false, err
		}
		tc, err := c.s.upstreamTLS(bs.insp, conn, bs.host)
		if err != nil {
			conn.Close()
			return nil, false, &DialError{Step: DialStepTLS, Host: bs.host, Err: err}
		}
		return newUpConn(tc, ap, key), false, nil
	}
	if _, pooled := c.ups.(poolUpstreams); up == nil || !pooled {
		return c.ups.take(key, c.req.target, check)
	}
	if !key.tls {
		conn, ap, err := c.s.dialParent(c.pol, e, up)
		if err != nil {
			return nil, false, err
		}
		u := newUpConn(conn, ap, key)
		u.parent, u.absolute = up, true
		return u, false, nil
	}
	conn, ap, err := c.s.connectViaParent(c.pol, e, up)
	if err != nil {
		return nil, false, err
	}
	tc := tls.Client(conn, c.s.upTLS(e.target.Host))
	ctx, cancel := context.WithTimeout(context.Background(), c.s.cfg.DialTimeout)
	err = tc.HandshakeContext(ctx)
	cancel()
	if err != nil {
		conn.Close()
		return nil, false, &DialError{Step: DialStepTLS, Host: e.target.Host, Err: err}
	}
	u := newUpConn(tc, ap, key)
	u.parent = up
	return u, false, nil
}

// writeParentRequestHead writes a plain request for a parent proxy: the
// absolute URL built from the checked target, and the parent's own
// credentials (the client's Proxy-Authorization, hop-by-hop, is dropped).
func writeParentRequestHead(bw *bufio.Writer, r *request, via string, up *acl.UpstreamProxy) {
	bw.WriteString(r.method)
	bw.WriteString(" http://")
	var hb [300]byte
	bw.Write(appendAuthority(hb[:0], r.target))
	extra := ""
	if up.Authorization != "" {
		extra = "Proxy-Authorization: " + up.Authorization + "\r\n"
	}
	writeRequestTail(bw, r, via, extra)
}

// parentAuthError is a parent's 407 to a plain request: egressd's own
// credentials are wrong, which the client can do nothing about.
func parentAuthError(up *upConn) error {
	return &ParentError{Parent: up.parent.URL, Status: http.StatusProxyAuthRequired, Err: errParentAuth}
}
