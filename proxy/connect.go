package proxy

import (
	"context"
	"time"
)

// connect serves a CONNECT request: dial first, answer 200 only once the
// upstream is there, then tunnel until both sides are done.
func (c *clientConn) connect(e *entry) {
	s, r := c.s, &c.req
	tenant := e.dec.Tenant
	check := dialCheck(c.pol, e)
	up, ap, err := s.dialer.dialTarget(context.Background(), r.target, check)
	if err != nil {
		c.failRequest(e, err, false)
		return
	}
	e.upstream = ap
	const established = "HTTP/1.1 200 Connection established\r\n"
	c.bw.WriteString(established)
	e.headDown = int64(len(established) + writeRequestID(c.bw, e.reqID) + 2)
	c.bw.WriteString("\r\n")
	if err := c.bw.Flush(); err != nil {
		up.Close()
		return
	}
	e.status = 200
	c.state.Store(stateTunnel)
	tun := s.metrics.TunnelOpened(tenant)
	defer c.later(func() { tun.Closed(e.up, e.down) })
	pending := bufferedBytes(c.br)
	c.release()
	c.raw.SetDeadline(time.Time{})
	c.afterConnect(e, up, pending)
}
