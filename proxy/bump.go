package proxy

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/egressd/egressd/acl"
	"github.com/egressd/egressd/tlsinspect"
)

// helloPeekTimeout bounds the wait for a client's first bytes in a tunnel
// we want to look into. TLS is client-speaks-first; a client that stays
// silent this long is running a server-speaks-first protocol.
const helloPeekTimeout = 3 * time.Second

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

// bumpState is what the requests inside one inspected tunnel share: the
// host they are pinned to and the verified upstream connection.
type bumpState struct {
	insp   *tlsinspect.Inspector
	tenant string // for refusals logged before any policy runs
	host   string
	port   uint16
	addr   netip.AddrPort
	creds  acl.Credentials
	up     *upConn
	upErr  error // upstream TLS verification failure, answered as 502 inside
	bytesU int64
	bytesD int64
}

// afterConnect runs once a tunnel is established: it peeks the ClientHello
// to enforce the SNI check and decide whether to inspect, then either
// splices or bumps. pending holds client bytes already read.
func (c *clientConn) afterConnect(e *entry, up net.Conn, pending []byte) {
	s, r := c.s, &c.req
	pol := c.pol
	tenant := e.dec.Tenant
	ins := pol.Inspection(tenant, r.target.Host)
	inspector := s.inspector.Load()
	if ins.SNICheck == acl.SNIOff && inspector == nil {
		c.detachTunnel(e, up, pending)
		return
	}
	c.raw.SetReadDeadline(time.Now().Add(helloPeekTimeout))
	hello, helloErr := c.peekHello(&pending, up)
	c.raw.SetReadDeadline(time.Time{})
	if helloErr != nil && !isTimeout(helloErr) && !errors.Is(helloErr, tlsinspect.ErrNotTLS) {
		// The client sent something TLS-shaped we cannot parse, or left.
		e.outcome = outcomeClientHello
		up.Close()
		return
	}

	host := r.target.Host
	if helloErr == nil && hello.SNI != "" {
		sni, _, err := acl.ParseHost(hello.SNI)
		if err != nil {
			e.outcome = outcomeClientHello
			up.Close()
			return
		}
		if sni != host && ins.SNICheck != acl.SNIOff {
			d := pol.Decide(c.id, r.creds, acl.Target{Scheme: "https", Host: sni, Port: r.target.Port, Method: "CONNECT"})
			if d.Action != acl.Allow || d.WouldDeny {
				if ins.SNICheck == acl.SNIEnforce && !d.WouldDeny {
					// Domain fronting: the CONNECT host was allowed, the
					// name inside the TLS handshake is not. The 200 is
					// already out, so the only answer left is a close.
					e.dec = d
					e.outcome = outcomeSNIDenied
					s.log.Info("tunnel closed: SNI not allowed for tenant", zap.String(fieldRequestID, e.reqID),
						zap.String(fieldTenant, tenant), zap.String("connect_host", host), zap.String("sni", sni))
					up.Close()
					return
				}
				e.outcome = outcomeSNIWouldDeny
			}
		}
		host = sni
		ins = pol.Inspection(tenant, host)
	}
	if inspector == nil || !ins.Bump {
		c.detachTunnel(e, up, pending)
		return
	}
	if helloErr != nil {
		if inspector.NonTLS() == tlsinspect.NonTLSSplice {
			e.outcome = outcomeNotTLSSpliced
			c.detachTunnel(e, up, pending)
			return
		}
		e.outcome = outcomeNotTLSRefused
		up.Close()
		return
	}
	c.inspect(inspector, e, up, pending, host)
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

// inspect terminates the client's TLS with a leaf minted for host, opens a
// verified TLS connection to the real server, and serves the requests
// inside as ordinary proxy requests, each decided and logged on its own.
func (c *clientConn) inspect(insp *tlsinspect.Inspector, e *entry, up net.Conn, pending []byte, host string) {
	s, r := c.s, &c.req
	e.kind = kindBumpedTunnel
	bs := &bumpState{insp: insp, host: host, port: r.target.Port, addr: e.upstream, creds: r.creds, tenant: e.dec.Tenant}
	defer func() {
		if bs.up != nil {
			bs.up.conn.Close()
		}
	}()
	upConn, err := s.upstreamTLS(insp, up, host)
	if err != nil {
		// Never hand the client a minted certificate for a server that
		// failed verification: the request inside gets a 502 instead.
		bs.upErr = err
		s.log.Warn("upstream TLS verification failed", zap.String(fieldRequestID, e.reqID),
			zap.String(fieldTenant, e.dec.Tenant), zap.String(fieldHost, host), zap.Error(err))
	} else {
		bs.up = newUpConn(upConn, e.upstream, poolKey{tenant: e.dec.Tenant, tls: true, host: host, port: r.target.Port})
	}
	cfg, err := insp.TLSConfigFor(host)
	if err != nil {
		e.outcome = outcomeMint
		s.log.Error("minting a leaf certificate failed", zap.String(fieldHost, host), zap.Error(err))
		return
	}
	client := tls.Server(&prefixConn{Conn: c.raw, pending: pending}, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.ReadHeaderTimeout)
	err = client.HandshakeContext(ctx)
	cancel()
	if err != nil {
		// Usually a client that does not trust the corporate CA.
		e.outcome = outcomeClientTLS
		s.log.Info("client refused the inspection certificate", zap.String(fieldRequestID, e.reqID),
			zap.String(fieldTenant, e.dec.Tenant), zap.String(fieldHost, host), zap.Error(err))
		client.Close()
		return
	}
	inner := &clientConn{s: s, raw: client, id: c.id, bump: bs}
	inner.br = readerPool.Get().(*bufio.Reader)
	inner.br.Reset(client)
	inner.bw = writerPool.Get().(*bufio.Writer)
	inner.bw.Reset(client)
	s.track(inner, true)
	defer func() {
		s.track(inner, false)
		inner.release()
		client.Close()
	}()
	inner.serve()
	e.up, e.down = bs.bytesU, bs.bytesD
}

// upstreamTLS verifies the real server, with the name the client asked for.
func (s *Server) upstreamTLS(insp *tlsinspect.Inspector, up net.Conn, host string) (*tls.Conn, error) {
	if insp.Insecure(host) {
		s.log.Warn("upstream certificate NOT verified (insecure_upstream)", zap.String(fieldHost, host))
	}
	tc := tls.Client(up, insp.UpstreamConfig(host))
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.DialTimeout)
	defer cancel()
	if err := tc.HandshakeContext(ctx); err != nil {
		return nil, err
	}
	return tc, nil
}

// takeUpstream returns the upstream connection for the next request:
// the bumped tunnel's own, or a pooled or new one.
func (c *clientConn) takeUpstream(key poolKey, t acl.Target, check func(netip.Addr) acl.Decision) (up *upConn, reused bool, err error) {
	if bs := c.bump; bs != nil {
		if bs.upErr != nil {
			return nil, false, &DialError{Step: DialStepTLS, Host: bs.host, Err: bs.upErr}
		}
		if bs.up != nil {
			up, bs.up = bs.up, nil
			return up, true, nil
		}
		// The origin closed the previous connection: dial the same checked
		// address again and verify again.
		conn, ap, err := c.s.dialer.dialTarget(context.Background(), t, check)
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
	if up = c.takePinned(key); up == nil {
		up = c.s.pool.get(key)
	}
	if up != nil {
		if check(up.addr.Addr()).Action == acl.Allow {
			return up, true, nil
		}
		// Pooled for a tenant whose rules allowed that address; not this one.
		up.conn.Close()
	}
	up, err = c.s.dialUpstream(key, t, check)
	return up, false, err
}

// putUpstream parks a reusable upstream connection.
func (c *clientConn) putUpstream(up *upConn) {
	if bs := c.bump; bs != nil {
		bs.up = up
		return
	}
	if c.pin(up) {
		return
	}
	c.s.pool.put(up)
}

// originTarget fills the target of an origin-form request inside a bumped
// tunnel: host and port are pinned by the tunnel; a Host field naming
// another host is refused (RFC 9110 §15.5.20, 421), since this connection
// can only reach the tunnel's server.
func (r *request) originTarget(bs *bumpState, rawTarget []byte) error {
	if len(rawTarget) == 0 || rawTarget[0] != '/' {
		return errBadTarget
	}
	if hv, ok := r.h.get("Host"); ok {
		host, port := splitHostPort(hv)
		name, _, err := acl.ParseHost(host)
		if err != nil || name != bs.host || port != bs.port {
			return errMisdirected
		}
		r.authority = hv
	}
	r.path = rawTarget
	p := rawTarget
	for i, ch := range p {
		if ch == '?' {
			p = p[:i]
			break
		}
	}
	r.target = acl.Target{Scheme: "https", Host: bs.host, Port: bs.port, Method: r.method, Path: string(p)}
	if a, err := netip.ParseAddr(bs.host); err == nil {
		r.target.Addr = a
	}
	return nil
}

var errMisdirected = errors.New("proxy: Host does not match the inspected tunnel")

// splitHostPort splits a Host field value; a missing port is https's
// default, 443 (RFC 9110 §4.2.2). An unparsable port is 0, which matches
// no tunnel.
func splitHostPort(v []byte) (string, uint16) {
	s := string(v)
	host, port := s, ""
	if strings.HasPrefix(s, "[") {
		if i := strings.IndexByte(s, ']'); i > 0 {
			host, port = s[:i+1], strings.TrimPrefix(s[i+1:], ":")
		}
	} else if i := strings.LastIndexByte(s, ':'); i >= 0 {
		host, port = s[:i], s[i+1:]
	}
	if port == "" {
		return host, 443
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return host, 0
	}
	return host, uint16(n)
}

var _ io.Reader = (*prefixConn)(nil)
