package proxy

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/egressd/egressd/acl"
	"github.com/egressd/egressd/tlsinspect"
)

// connect serves a CONNECT request: dial first, answer 200 only once the
// upstream is there, then tunnel until both sides are done. life is the
// tunnel's: a spliced tunnel takes a share of it and ends it later.
func (c *clientConn) connect(e *entry, life *lifetime) {
	s := c.s
	tenant := e.dec.Tenant
	check := dialCheck(c.pol, e)
	up, ap, err := c.dialTunnel(e, check)
	if err != nil {
		c.failRequest(e, err, false)
		return
	}
	e.upstream = ap
	c.updateGrant(func(g *grant) { g.upstream = ap.Addr() })
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
	life.atEnd(func() { tun.Closed(e.up, e.down) })
	pending := bufferedBytes(c.br)
	c.release()
	c.raw.SetDeadline(time.Time{})
	c.afterConnect(e, life, up, pending)
}

// helloPeekTimeout bounds the wait for a client's ClientHello. TLS is
// client-speaks-first, so a client still silent (or still mid-hello)
// after this long is not speaking a protocol we can check: under
// sni_check enforce, or when the tunnel is to be inspected, it is
// refused. Only an upstream that speaks first marks a server-first
// protocol (see waitFirstSpeaker).
const helloPeekTimeout = 3 * time.Second

// tunnelPlan is what an established CONNECT becomes once its first bytes
// are read. The zero value refuses, so an early return fails closed.
type tunnelPlan uint8

const (
	planRefuse tunnelPlan = iota
	planSplice
	planBump
)

// afterConnect runs once a tunnel is established: it reads the
// ClientHello, decides the tunnel from the CONNECT host and the SNI
// together, and splices, bumps or closes. pending holds client bytes
// already read.
func (c *clientConn) afterConnect(e *entry, life *lifetime, up net.Conn, pending []byte) {
	insp := c.s.inspector.Load()
	plan, host, alpn := c.planTunnel(e, insp, up, &pending)
	if e.sni != "" && e.sni != c.req.target.Host {
		c.updateGrant(func(g *grant) { g.sni = e.sni })
	}
	if plan == planBump && c.learnedSplice(e, host) {
		plan = planSplice
	}
	switch plan {
	case planSplice:
		c.detachTunnel(e, life, up, pending)
	case planBump:
		c.inspect(insp, e, up, pending, host, alpn)
	default:
		up.Close()
	}
}

// planTunnel decides what the tunnel becomes, and for a bump the host
// the tunnel is pinned to (the SNI when it names one) and the ALPN
// protocols the client offered. It sets the entry's
// error for every refusal and for splices that policy only reported.
//
// The SNI and the CONNECT host are both decided: the SNI by the ACL (per
// sni_check) and by the inspection list. When one of them is to be
// inspected and the other spliced, the tunnel is refused rather than
// resolved either way: splicing would let an SNI on the splice list carry
// traffic to an inspected host uninspected (issue 12, bypass 2), and
// bumping would break the client that listed the host for splicing
// because it pins its certificate.
func (c *clientConn) planTunnel(e *entry, insp *tlsinspect.Inspector, up net.Conn, pending *[]byte) (plan tunnelPlan, host string, alpn []string) {
	s, pol, target := c.s, c.pol, c.req.target
	tenant := e.dec.Tenant
	ins := pol.Inspection(tenant, target.Host)
	bump := insp != nil && ins.Bump
	if ins.SNICheck == acl.SNIOff && insp == nil {
		return planSplice, "", nil
	}
	c.raw.SetReadDeadline(time.Now().Add(helloPeekTimeout))
	hello, err := c.peekHello(pending, up)
	c.raw.SetReadDeadline(time.Time{})
	switch {
	case err == nil:
	case errors.Is(err, tlsinspect.ErrNotTLS):
		// The upstream spoke first, or the client's first byte is not a
		// TLS record: there is no ClientHello and so no SNI to check.
		if !bump {
			return planSplice, "", nil
		}
		if insp.NonTLS() == tlsinspect.NonTLSSplice {
			e.outcome = outcomeNotTLSSpliced
			return planSplice, "", nil
		}
		e.outcome = outcomeNotTLSRefused
		return planRefuse, "", nil
	case isTimeout(err):
		// Silent, or part of a hello and then silence. Splicing now would
		// forward whatever comes next unchecked (issue 12, bypass 5).
		if bump || ins.SNICheck == acl.SNIEnforce {
			e.outcome = outcomeClientHelloTimeout
			s.log.Info("tunnel closed: no complete ClientHello in time", zap.String(fieldRequestID, e.reqID),
				zap.String(fieldTenant, tenant), zap.String("connect_host", target.Host),
				zap.Int("hello_bytes", len(*pending)), zap.Duration("timeout", helloPeekTimeout))
			return planRefuse, "", nil
		}
		if ins.SNICheck == acl.SNIReport {
			e.outcome = outcomeSNIUnchecked
		}
		return planSplice, "", nil
	default:
		// TLS-shaped bytes we cannot parse, or the client left mid-hello.
		e.outcome = outcomeClientHello
		return planRefuse, "", nil
	}

	host = target.Host
	if hello.SNI == "" {
		return planOf(bump), host, hello.ALPN
	}
	sni, _, err := acl.ParseHost(hello.SNI)
	if err != nil {
		e.outcome = outcomeClientHello
		return planRefuse, "", nil
	}
	e.sni = sni
	if sni == host {
		return planOf(bump), host, hello.ALPN
	}
	if ins.SNICheck != acl.SNIOff {
		d := pol.Decide(c.id, c.req.creds, acl.Target{Scheme: "https", Host: sni, Port: target.Port, Method: "CONNECT"})
		if d.Action != acl.Allow || d.WouldDeny {
			if ins.SNICheck == acl.SNIEnforce && !d.WouldDeny {
				// Domain fronting: the CONNECT host was allowed, the
				// name inside the TLS handshake is not. The 200 is
				// already out, so the only answer left is a close.
				e.dec = d
				e.outcome = outcomeSNIDenied
				s.log.Info("tunnel closed: SNI not allowed for tenant", zap.String(fieldRequestID, e.reqID),
					zap.String(fieldTenant, tenant), zap.String("connect_host", host), zap.String("sni", sni))
				return planRefuse, "", nil
			}
			e.outcome = outcomeSNIWouldDeny
		}
	}
	if insp != nil && pol.Inspection(tenant, sni).Bump != ins.Bump {
		e.outcome = outcomeSNIInspectionMismatch
		s.log.Info("tunnel closed: SNI and CONNECT host differ in inspection", zap.String(fieldRequestID, e.reqID),
			zap.String(fieldTenant, tenant), zap.String("connect_host", host), zap.String("sni", sni),
			zap.Bool("connect_host_inspected", ins.Bump))
		return planRefuse, "", nil
	}
	// Both are inspected (or neither): a bump is pinned to the name the
	// client will verify the certificate against.
	return planOf(bump), sni, hello.ALPN
}

func planOf(bump bool) tunnelPlan {
	if bump {
		return planBump
	}
	return planSplice
}

var peekPool = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, tlsinspect.MaxPeek) }}

// prefixConn replays bytes already read off a connection before reading
// on from it, so a peeked ClientHello is handed to the TLS server whole.
type prefixConn struct {
	net.Conn
	pending []byte
}

func (p *prefixConn) Read(b []byte) (int, error) {
	if len(p.pending) > 0 {
		n := copy(b, p.pending)
		p.pending = p.pending[n:]
		return n, nil
	}
	return p.Conn.Read(b)
}

// peekHello reads the ClientHello without consuming it; *pending gets
// every byte read so far. It waits for the first byte before taking a
// 16 KiB peek buffer, so a tunnel whose client is silent (or idle) holds
// no buffer at all.
func (c *clientConn) peekHello(pending *[]byte, up net.Conn) (tlsinspect.ClientHelloInfo, error) {
	if tc, ok := c.raw.(*net.TCPConn); ok && len(*pending) == 0 {
		if err := waitFirstSpeaker(tc, up); err != nil {
			return tlsinspect.ClientHelloInfo{}, err
		}
	}
	pr := peekPool.Get().(*bufio.Reader)
	pr.Reset(&prefixConn{Conn: c.raw, pending: *pending})
	hello, err := tlsinspect.PeekClientHello(pr)
	*pending = bufferedBytes(pr)
	pr.Reset(nil)
	peekPool.Put(pr)
	return hello, err
}

// errServerFirst says the upstream spoke before the client: not TLS, which
// is client-first, so there is no ClientHello to wait for.
var errServerFirst = fmt.Errorf("proxy: upstream spoke first: %w", tlsinspect.ErrNotTLS)

// waitFirstSpeaker waits until the client has a byte for us, or returns
// errServerFirst as soon as the upstream does (SSH, SMTP and other
// server-speaks-first protocols), so their banner is not held back for the
// whole peek timeout. The client's read deadline bounds the wait.
func waitFirstSpeaker(client *net.TCPConn, up net.Conn) error {
	upTCP, ok := up.(*net.TCPConn)
	if !ok {
		return waitReadable(client)
	}
	var serverFirst atomic.Bool
	done := make(chan struct{})
	go func() {
		defer close(done)
		if waitReadable(upTCP) == nil {
			serverFirst.Store(true)
			client.SetReadDeadline(time.Now()) // wake the wait below
		}
	}()
	err := waitReadable(client)
	upTCP.SetReadDeadline(time.Now()) // release the watcher if still waiting
	<-done
	upTCP.SetReadDeadline(time.Time{})
	if serverFirst.Load() {
		return errServerFirst
	}
	return err
}
