package proxy

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/netip"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/egressd/egressd/acl"
	"github.com/egressd/egressd/metrics"
)

// Connection states, for drain: only an idle connection may be closed
// under a client's feet, and only between requests.
const (
	stateActive int32 = iota
	stateIdle
	stateClosed
	stateTunnel
)

type clientConn struct {
	s     *Server
	raw   net.Conn
	br    *bufio.Reader
	bw    *bufio.Writer
	id    acl.Identity
	state atomic.Int32
	req   request
	resp  head
	// closeAfter is set when this request leaves the connection unusable
	// (an unread body, a close-delimited response); upgraded when it
	// became a tunnel.
	closeAfter bool
	upgraded   bool
	// bump is set on the inner connection of an inspected tunnel: the
	// host and port every request inside is pinned to.
	bump *bumpState
	// ups is where requests get their upstream: the shared pool, or the
	// inspected tunnel's pinned connection.
	ups   upstreams
	mconn *metrics.Conn
	pol   Policy // the policy deciding the request in progress
	// pinned is an upstream connection that only this client connection
	// may use (connection-oriented authentication; see pin.go).
	pinned *upConn

	// charged and chargedTo are the tenant this connection is counted
	// against (connlimit.go); only the connection's own goroutine and its
	// close touch them.
	charged   bool
	chargedTo string

	// grant is what the connection holds by a decision, re-decided on a
	// reload (revoke.go); revoked says a reload closed it.
	grantMu  sync.Mutex
	grant    grant
	hasGrant bool
	revoked  atomic.Bool

	// detached is set once a spliced tunnel owns this connection (see
	// detachTunnel): the connection is then closed by the tunnel's
	// lifetime, not by serveConn.
	detached bool
}

// lifetime is what one exchange (a request, or a tunnel from its 200 to
// its last byte) owns and must release exactly once when it really ends:
// its access line, its tenant slot, its tunnel metric. A request ends when
// handle returns; a spliced tunnel outlives the connection's goroutine
// (see detachTunnel), so it ends when the last of its owners is done.
type lifetime struct {
	owners atomic.Int32
	ends   []func()
	last   func()
}

func newLifetime() *lifetime {
	l := &lifetime{}
	l.owners.Store(1)
	return l
}

// atEnd registers f to run when the exchange ends. Like defer, the last
// registered runs first. Only the first owner registers, before it shares.
func (l *lifetime) atEnd(f func()) { l.ends = append(l.ends, f) }

// finally sets what runs after every end: closing a connection that the
// exchange took over.
func (l *lifetime) finally(f func()) { l.last = f }

// share adds an owner; call it before handing the exchange to the new
// owner's goroutine.
func (l *lifetime) share() { l.owners.Add(1) }

// done says one owner is finished; the last one runs the ends.
func (l *lifetime) done() {
	if l.owners.Add(-1) != 0 {
		return
	}
	for i := len(l.ends) - 1; i >= 0; i-- {
		l.ends[i]()
	}
	if l.last != nil {
		l.last()
	}
}

var (
	readerPool = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 4096) }}
	writerPool = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 4096) }}
)

func (s *Server) serveConn(raw net.Conn) {
	c := &clientConn{s: s, raw: raw}
	c.ups = poolUpstreams{c}
	s.track(c, true)
	c.mconn = s.metrics.ConnOpened()
	defer func() {
		if v := recover(); v != nil {
			// A bug on one connection must not take every tenant down.
			s.log.Error("panic serving connection", zap.Any("panic", v), zap.ByteString("stack", debug.Stack()))
		}
		if !c.detached {
			c.close()
		}
	}()
	c.br = readerPool.Get().(*bufio.Reader)
	c.br.Reset(raw)
	c.bw = writerPool.Get().(*bufio.Writer)
	c.bw.Reset(raw)

	peer := addrPortOf(raw.RemoteAddr())
	raw.SetReadDeadline(time.Now().Add(s.cfg.ProxyHeaderTimeout))
	id, probe, outcome := s.readIdentity(c.br, peer)
	s.metrics.ProxyHeader(outcome)
	switch outcome {
	case metrics.HeaderUntrusted, metrics.HeaderMissing, metrics.HeaderMalformed, metrics.HeaderTimeout:
		s.warnHeaderRefused(outcome, peer)
		return
	}
	if probe {
		c.answerProbe()
		return
	}
	if s.open.Load() > int64(s.cfg.MaxConnections) {
		// In the probe reserve (acceptLimit): only probes are served.
		s.metrics.LimitRejected(metrics.ScopeGlobal, "")
		raw.Write(overloaded)
		return
	}
	c.id = id
	// The tenant is known once the header is read: the connection counts
	// against it from now on, idle or not, until it closes.
	if tenant := s.currentPolicy().NetworkTenant(id); !c.chargeConn(tenant) {
		c.refuseConnCap(tenant)
		return
	}
	c.serve()
}

// answerProbe replies to a load balancer health probe. A TCP probe sends
// nothing and closes; an HTTP probe gets a tiny response. While draining
// the answer is 503 so the load balancer stops sending new flows here.
func (c *clientConn) answerProbe() {
	c.raw.SetReadDeadline(time.Now().Add(c.s.cfg.ReadHeaderTimeout))
	if err := readHead(c.br, &c.req.h, c.s.cfg.MaxHeaderBytes); err != nil {
		return
	}
	status := "200 OK"
	if c.s.unready.Load() {
		status = "503 Service Unavailable"
	}
	c.bw.WriteString("HTTP/1.1 " + status + "\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
	c.bw.Flush()
}

// serve is the request loop of one client connection.
func (c *clientConn) serve() {
	s := c.s
	for {
		c.state.Store(stateIdle)
		if s.draining.Load() {
			return
		}
		c.raw.SetReadDeadline(time.Now().Add(s.cfg.ClientIdleTimeout))
		if _, err := c.br.Peek(1); err != nil {
			return
		}
		if !c.state.CompareAndSwap(stateIdle, stateActive) {
			return // closed by a drain while we waited
		}
		c.raw.SetReadDeadline(time.Now().Add(s.cfg.ReadHeaderTimeout))
		err := readHead(c.br, &c.req.h, s.cfg.MaxHeaderBytes)
		if err == nil {
			err = parseRequest(&c.req, c.bump)
		}
		if err != nil {
			c.refuse(err)
			return
		}
		// Body copies set their own per-read and per-write deadlines; clear
		// the previous request's so a slow keep-alive gap cannot trip them.
		c.raw.SetDeadline(time.Time{})
		if !c.handle() {
			return
		}
	}
}

// refuse answers a request that could not be parsed and closes: after a
// framing error nothing later on this connection can be trusted.
func (c *clientConn) refuse(err error) {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || isTimeout(err) || errors.Is(err, net.ErrClosed) {
		return
	}
	e := entry{start: time.Now(), reqID: c.s.newRequestID(), id: c.id, kind: kindHTTP, method: c.req.method}
	if bs := c.bump; bs != nil {
		// Inside an inspected tunnel the tenant and destination are known.
		e.kind, e.dec.Tenant = kindBumped, bs.tenant
		e.target = acl.Target{Scheme: "https", Host: bs.host, Port: bs.port}
	}
	status, o := statusFor(err)
	e.status, e.outcome = status, o
	e.headDown = int64(writeStatus(c.bw, status, o.String(), o.say(), e.reqID, true))
	c.s.finish(&e)
}

// handle serves one parsed request; it reports whether the connection may
// carry another.
func (c *clientConn) handle() bool {
	s, r := c.s, &c.req
	c.closeAfter = false
	e := entry{start: time.Now(), reqID: s.newRequestID(), id: c.id, method: r.method, target: r.target, kind: kindHTTP}
	switch {
	case r.method == "CONNECT":
		e.kind = kindConnect
	case c.bump != nil:
		e.kind = kindBumped
		e.url = absoluteURL(r)
		if !r.creds.Present {
			// Clients authenticate on the CONNECT, never inside the TLS.
			r.creds = c.bump.creds
		}
		defer func() { c.bump.bytesU += e.up; c.bump.bytesD += e.down }()
	default:
		e.url = absoluteURL(r)
	}
	life := newLifetime()
	defer life.done()
	life.atEnd(func() {
		if c.revoked.Load() {
			e.outcome = outcomeRevoked
		}
		s.finish(&e)
	})
	hasBody := r.chunked || r.contentLength > 0
	keep := !r.wantsClose && !hasBody

	// One policy for the whole request: a reload mid-request must not
	// mix the decision of one config with the dial check of another.
	c.pol = s.currentPolicy()
	e.dec = c.pol.Decide(c.id, r.creds, r.target)
	c.mconn.Identified(e.dec.Tenant)
	if c.bump == nil && !c.chargeConn(e.dec.Tenant) {
		// Credentials named another tenant than the network did, and that
		// tenant is at its cap.
		o := outcomeConnLimit
		e.status, e.outcome = o.status(), o
		s.metrics.LimitRejected(metrics.ScopeTenantConnections, e.dec.Tenant)
		e.headDown = int64(writeStatus(c.bw, e.status, o.String(), o.say(), e.reqID, true, "Retry-After", "1"))
		return false
	}
	e.user = e.dec.User // only a user whose password verified is named in the log
	switch e.dec.Action {
	case acl.AuthRequired:
		e.status, e.outcome = outcomeAuth.status(), outcomeAuth
		if r.creds.Present {
			// A challenge to a client that sent nothing is the normal first
			// step of Basic auth; only rejected credentials are failures.
			s.metrics.AuthFailed(e.dec.Tenant)
			s.log.Info("proxy authentication failed", zap.String(fieldRequestID, e.reqID),
				zap.String(fieldTenant, e.dec.Tenant), zap.String(fieldUser, r.creds.User),
				zap.Stringer(fieldClient, c.id.Client))
		}
		e.headDown = int64(writeStatus(c.bw, e.status, outcomeAuth.String(), "proxy authentication required", e.reqID, !keep,
			"Proxy-Authenticate", `Basic realm="egressd"`))
		return keep
	case acl.Allow:
	default:
		e.status, e.outcome = outcomeACL.status(), outcomeACL
		e.headDown = int64(writeStatus(c.bw, e.status, outcomeACL.String(), denyDetail(e.dec, r.target), e.reqID, !keep,
			"X-Proxy-Deny-Reason", e.dec.Reason.String()))
		return keep
	}
	if !s.limits.allow(e.dec.Tenant, c.pol.Limits(e.dec.Tenant)) {
		o := outcomeLimit
		if r.method == "CONNECT" {
			o = outcomeTunnelLimit
		}
		e.status, e.outcome = o.status(), o
		s.metrics.LimitRejected(metrics.ScopeTenant, e.dec.Tenant)
		e.headDown = int64(writeStatus(c.bw, e.status, o.String(), "tenant "+e.dec.Tenant+" is over its request budget", e.reqID, !keep, "Retry-After", "1"))
		return keep
	}
	c.setGrant(grant{reqID: e.reqID, kind: e.kind, tenant: e.dec.Tenant, target: r.target, creds: r.creds})
	if r.method == "CONNECT" {
		c.connect(&e, life)
		return false
	}
	return c.forward(&e)
}

func denyDetail(d acl.Decision, t acl.Target) string {
	tenant := d.Tenant
	if tenant == "" {
		tenant = "unknown"
	}
	return "tenant " + tenant + " may not reach " + t.Host + ":" + strconv.Itoa(int(t.Port)) + " (rule " + d.Rule + ")"
}

func absoluteURL(r *request) string {
	b := make([]byte, 0, len(r.target.Scheme)+3+len(r.target.Host)+8+len(r.path))
	b = append(b, r.target.Scheme...)
	b = append(b, "://"...)
	b = appendAuthority(b, r.target)
	b = append(b, r.path...)
	return string(b)
}

// appendAuthority appends the canonical host[:port] of t, as the upstream
// Host header carries it: the host the policy checked (lower case, no
// trailing dot, IPv6 in brackets), and the port only when it is not the
// scheme's default (issue 12, bypass 6).
func appendAuthority(b []byte, t acl.Target) []byte {
	if t.Addr.Is6() {
		b = append(b, '[')
		b = append(b, t.Host...)
		b = append(b, ']')
	} else {
		b = append(b, t.Host...)
	}
	if t.Scheme == "https" && t.Port == 443 || t.Scheme == "http" && t.Port == 80 {
		return b
	}
	b = append(b, ':')
	return strconv.AppendUint(b, uint64(t.Port), 10)
}

// finish writes the access log line and counts the request; it runs
// exactly once per request or tunnel, whatever path ended it.
func (s *Server) finish(e *entry) {
	s.access.write(e)
	s.metrics.Request(e)
}

// release returns the pooled buffers; after a tunnel starts they are
// returned early so an idle tunnel holds no user-space buffers.
func (c *clientConn) release() {
	if c.br != nil {
		c.br.Reset(nil)
		readerPool.Put(c.br)
		c.br = nil
	}
	if c.bw != nil {
		c.bw.Reset(nil)
		writerPool.Put(c.bw)
		c.bw = nil
	}
}

// close ends the connection and its accounting; it runs exactly once.
func (c *clientConn) close() {
	s := c.s
	c.raw.Close()
	c.releasePinned()
	c.releaseConn()
	c.release()
	s.track(c, false)
	c.mconn.Closed()
	s.open.Add(-1)
	s.wg.Done()
}

func (c *clientConn) forceClose() {
	c.state.Store(stateClosed)
	c.raw.Close()
}

func addrPortOf(a net.Addr) netip.AddrPort {
	if ta, ok := a.(*net.TCPAddr); ok {
		ap := ta.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	ap, _ := netip.ParseAddrPort(a.String())
	return ap
}
