package proxy

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/netip"
	"time"

	"go.uber.org/zap"

	"github.com/egressd/egressd/acl"
	"github.com/egressd/egressd/tlsinspect"
)

// bumpState is what the requests inside one inspected tunnel share: the
// host they are pinned to and the verified upstream connection.
type bumpState struct {
	s      *Server
	insp   *tlsinspect.Inspector
	tenant string // for refusals logged before any policy runs
	host   string
	port   uint16
	addr   netip.AddrPort
	creds  acl.Credentials
	up     *upConn
	bytesU int64
	bytesD int64
}

// inspect bumps a tunnel upstream first: it opens and verifies the TLS
// connection to the real server before answering the client's hello, so
// a server that fails verification never stands behind a certificate the
// client trusts. The client then gets a TLS alert naming the failure
// instead of a minted leaf. Upstream first also settles ALPN: the upstream
// is offered h2 only if the client offered it, and the client is offered
// what the upstream chose (tlsinspect.ClientALPN). Once both legs are up,
// the requests inside, HTTP/1.1 requests or HTTP/2 streams, are served as
// ordinary proxy requests, each decided and logged on its own.
func (c *clientConn) inspect(insp *tlsinspect.Inspector, e *entry, up net.Conn, pending []byte, host string, clientALPN []string) {
	s, r := c.s, &c.req
	e.kind = kindBumpedTunnel
	upConn, err := s.upstreamTLS(insp, up, host, tlsinspect.UpstreamALPN(clientALPN)...)
	if err != nil {
		up.Close()
		e.outcome = outcomeUpstreamTLS
		s.log.Warn("upstream TLS verification failed", zap.String(fieldRequestID, e.reqID),
			zap.String(fieldTenant, e.dec.Tenant), zap.String(fieldHost, host), zap.Error(err))
		refuseHello(c.raw, alertFor(err))
		return
	}
	bs := &bumpState{s: s, insp: insp, host: host, port: r.target.Port, addr: e.upstream, creds: r.creds, tenant: e.dec.Tenant}
	bs.up = newUpConn(upConn, e.upstream, poolKey{tenant: e.dec.Tenant, tls: true, host: host, port: r.target.Port})
	defer func() {
		if bs.up != nil {
			bs.up.conn.Close()
		}
	}()
	cfg, err := insp.TLSConfigFor(host, tlsinspect.ClientALPN(upConn.ConnectionState().NegotiatedProtocol))
	if err != nil {
		e.outcome = outcomeMint
		s.log.Error("minting a leaf certificate failed", zap.String(fieldHost, host), zap.Error(err))
		refuseHello(c.raw, alertInternalError)
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
		if tlsinspect.RejectedCertificate(err) {
			c.clientRefusedCertificate(e, host)
		}
		return
	}
	if client.ConnectionState().NegotiatedProtocol == tlsinspect.ALPNH2 {
		bs.up = nil // the HTTP/2 leg owns it now
		e.up, e.down = c.serveH2(bs, client, upConn)
		client.Close()
		return
	}
	inner := &clientConn{s: s, raw: client, id: c.id, bump: bs, ups: bs}
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

// TLS alert descriptions (RFC 8446 §6.2) sent in place of a ServerHello.
const (
	alertHandshakeFailure   = 40
	alertBadCertificate     = 42
	alertCertificateExpired = 45
	alertUnknownCA          = 48
	alertInternalError      = 80
)

// alertFor names an upstream verification failure in the alert the
// client gets, so its error says why ("unknown certificate authority",
// "expired certificate") without egressd minting anything.
func alertFor(err error) uint8 {
	var (
		unknown x509.UnknownAuthorityError
		invalid x509.CertificateInvalidError
		name    x509.HostnameError
	)
	switch {
	case errors.As(err, &unknown):
		return alertUnknownCA
	case errors.As(err, &invalid) && invalid.Reason == x509.Expired:
		return alertCertificateExpired
	case errors.As(err, &invalid), errors.As(err, &name):
		return alertBadCertificate
	default:
		return alertHandshakeFailure
	}
}

// refuseHello answers a ClientHello with one fatal alert record and
// half-closes. The record is plaintext, as every record before the
// handshake keys exist is (RFC 8446 §5.1); 0x0303 is the legacy record
// version every TLS 1.2 and 1.3 client accepts.
func refuseHello(c net.Conn, desc uint8) {
	c.SetWriteDeadline(time.Now().Add(time.Second))
	c.Write([]byte{0x15, 0x03, 0x03, 0x00, 0x02, 0x02, desc})
	if tc, ok := c.(*net.TCPConn); ok {
		tc.CloseWrite()
	}
}

// upstreamTLS verifies the real server, with the name the client asked
// for, offering alpn (HTTP/1.1 when none is given).
func (s *Server) upstreamTLS(insp *tlsinspect.Inspector, up net.Conn, host string, alpn ...string) (*tls.Conn, error) {
	if insp.Insecure(host) {
		s.log.Warn("upstream certificate NOT verified (insecure_upstream)", zap.String(fieldHost, host))
	}
	tc := tls.Client(up, insp.UpstreamConfig(host, alpn...))
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.DialTimeout)
	defer cancel()
	if err := tc.HandshakeContext(ctx); err != nil {
		return nil, err
	}
	return tc, nil
}

// take returns the tunnel's pinned upstream connection for the next
// request inside it. A bumped tunnel never uses the shared pool: its
// upstream was dialed for this tunnel's checked address and verified for
// its host.
func (bs *bumpState) take(key poolKey, t acl.Target, check func(netip.Addr) acl.Decision) (*upConn, bool, error) {
	if bs.up != nil {
		up := bs.up
		bs.up = nil
		return up, true, nil
	}
	// The origin closed the previous connection: dial the same checked
	// address again and verify again.
	conn, ap, err := bs.s.dialer.dialTarget(context.Background(), t, check)
	if err != nil {
		return nil, false, err
	}
	tc, err := bs.s.upstreamTLS(bs.insp, conn, bs.host)
	if err != nil {
		conn.Close()
		return nil, false, &DialError{Step: DialStepTLS, Host: bs.host, Err: err}
	}
	return newUpConn(tc, ap, key), false, nil
}

// put keeps a reusable upstream connection for the tunnel's next request.
func (bs *bumpState) put(up *upConn) {
	if bs.up != nil {
		bs.up.conn.Close()
	}
	bs.up = up
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
		// A Host without a port names https's default (RFC 9110 §4.2.2).
		if a, err := parseAuthority(hv, 443); err != nil || a.Host != bs.host || a.Port != bs.port {
			return errMisdirected
		}
	}
	// Host and port are the tunnel's checked ones whatever the client
	// wrote (or left out), so nothing of this request's raw authority, or
	// of an earlier request's, reaches the upstream (issue 12, bypass 1).
	r.target = acl.Target{Scheme: "https", Host: bs.host, Port: bs.port, Method: r.method}
	if a, err := netip.ParseAddr(bs.host); err == nil {
		r.target.Addr = a
	}
	return r.setPath(rawTarget)
}

var errMisdirected = errors.New("proxy: Host does not match the inspected tunnel")

var _ io.Reader = (*prefixConn)(nil)
