package proxy

import (
	"bufio"
	"crypto/tls"
	"errors"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"time"

	"github.com/egressd/egressd/acl"
)

// upstreams is where a request's upstream connection comes from and goes
// back to: the shared pool for plain requests (poolUpstreams), or the one
// pinned connection of an inspected tunnel (*bumpState). The request path
// does not know which.
type upstreams interface {
	// take returns a connection for a request to t, dialing through
	// check when nothing reusable is there; reused says whether it has
	// carried a request before (a stale one may then be retried).
	take(key poolKey, t acl.Target, check func(netip.Addr) acl.Decision) (up *upConn, reused bool, err error)
	// put parks a connection whose response ended cleanly.
	put(up *upConn)
}

// poolUpstreams serves plain requests from the server's pool, except a
// connection pinned to this client connection (pin.go), which only it uses.
type poolUpstreams struct{ c *clientConn }

func (p poolUpstreams) take(key poolKey, t acl.Target, check func(netip.Addr) acl.Decision) (*upConn, bool, error) {
	s := p.c.s
	up := p.c.takePinned(key)
	if up == nil {
		up = s.pool.get(key)
	}
	if up != nil {
		if check(up.addr.Addr()).Action == acl.Allow {
			return up, true, nil
		}
		// Pooled under a policy whose rules allowed that address; not this one.
		up.conn.Close()
	}
	up, err := s.dialUpstream(key, t, check)
	return up, false, err
}

func (p poolUpstreams) put(up *upConn) {
	if up.parent != nil {
		up.conn.Close()
		return
	}
	if p.c.pin(up) {
		return
	}
	p.c.s.pool.put(up)
}

// upConn is one upstream connection with its own buffers.
type upConn struct {
	conn   net.Conn
	br     *bufio.Reader
	bw     *bufio.Writer
	addr   netip.AddrPort
	key    poolKey
	idleAt time.Time
	// connAuth is set once an exchange on this connection used
	// connection-oriented authentication (NTLM, Negotiate): the origin now
	// treats the connection itself as that user, so it may serve only the
	// client connection that authenticated it (see pin.go).
	connAuth bool
	// parent is set on connections to a parent proxy (parent.go); they
	// are never pooled. absolute says requests go to it in absolute form.
	parent   *acl.UpstreamProxy
	absolute bool
}

// poolKey names the connections one request may reuse. tenant is part of
// it: an idle connection carries whatever state its origin attached to it
// (an authenticated session, a response it sent late), and none of one
// tenant's may reach another.
type poolKey struct {
	tenant string
	tls    bool
	host   string
	port   uint16
}

func newUpConn(c net.Conn, addr netip.AddrPort, key poolKey) *upConn {
	return &upConn{conn: c, br: bufio.NewReaderSize(c, 4096), bw: bufio.NewWriterSize(c, 4096), addr: addr, key: key}
}

// upstreamPool keeps idle keep-alive connections per origin. A default
// http.Transport keeps two per host; a proxy that fans many clients into a
// few origins needs more, or every request pays a TCP handshake and leaves
// a TIME_WAIT socket behind.
type upstreamPool struct {
	mu        sync.Mutex
	idle      map[poolKey][]*upConn
	perHost   int
	timeout   time.Duration
	lastSweep time.Time
	closed    bool
}

func newUpstreamPool(perHost int, timeout time.Duration) *upstreamPool {
	return &upstreamPool{idle: make(map[poolKey][]*upConn), perHost: perHost, timeout: timeout, lastSweep: time.Now()}
}

// get returns the most recently used live connection for k, or nil.
func (p *upstreamPool) get(k poolKey) *upConn {
	now := time.Now()
	for {
		p.mu.Lock()
		list := p.idle[k]
		if len(list) == 0 {
			p.mu.Unlock()
			return nil
		}
		u := list[len(list)-1]
		list[len(list)-1] = nil
		p.idle[k] = list[:len(list)-1]
		p.mu.Unlock()
		// Always peek, however recently it was parked: bytes the origin
		// sent after its response (a late or forged second response) must
		// never be read as the answer to the next request. One recvfrom
		// per reuse is the price.
		if now.Sub(u.idleAt) < p.timeout && alive(u.conn) {
			return u
		}
		u.conn.Close()
	}
}

// put parks u for reuse, or closes it when the pool for its origin is full
// or it holds bytes nobody asked for.
func (p *upstreamPool) put(u *upConn) {
	if hasUnread(u) {
		u.conn.Close()
		return
	}
	now := time.Now()
	u.idleAt = now
	u.conn.SetDeadline(time.Time{})
	p.mu.Lock()
	if p.closed || len(p.idle[u.key]) >= p.perHost {
		p.mu.Unlock()
		u.conn.Close()
		return
	}
	p.idle[u.key] = append(p.idle[u.key], u)
	var expired []*upConn
	if now.Sub(p.lastSweep) > p.timeout/2 {
		p.lastSweep = now
		expired = p.sweepLocked(now)
	}
	p.mu.Unlock()
	for _, e := range expired {
		e.conn.Close()
	}
}

// sweepLocked drops connections idle past the timeout, so origins that are
// never asked for again do not hold descriptors forever.
func (p *upstreamPool) sweepLocked(now time.Time) []*upConn {
	var out []*upConn
	for k, list := range p.idle {
		keep := list[:0]
		for _, u := range list {
			if now.Sub(u.idleAt) >= p.timeout {
				out = append(out, u)
			} else {
				keep = append(keep, u)
			}
		}
		clear(list[len(keep):])
		if len(keep) == 0 {
			delete(p.idle, k)
		} else {
			p.idle[k] = keep
		}
	}
	return out
}

func (p *upstreamPool) closeAll() {
	p.mu.Lock()
	p.closed = true
	all := p.idle
	p.idle = make(map[poolKey][]*upConn)
	p.mu.Unlock()
	for _, list := range all {
		for _, u := range list {
			u.conn.Close()
		}
	}
}

// hasUnread reports whether u holds bytes past the response just relayed:
// in its bufio.Reader or, for TLS, decrypted inside the tls.Conn. Such a
// connection is out of step with its origin and is never reused.
func hasUnread(u *upConn) bool {
	if u.br.Buffered() > 0 {
		return true
	}
	if _, ok := u.conn.(*tls.Conn); !ok {
		return false // the socket itself is peeked by alive on reuse
	}
	// tls.Conn returns plaintext it already holds even past a deadline,
	// and an expired deadline fails the read before any syscall; a timeout
	// is temporary and leaves the TLS state usable.
	u.conn.SetReadDeadline(time.Unix(1, 0))
	_, err := u.br.Peek(1)
	u.conn.SetReadDeadline(time.Time{})
	return err == nil || !isTimeout(err)
}

// alive reports whether an idle connection is still usable: the origin has
// not closed it and has not sent unsolicited bytes. It peeks without
// blocking, so a stale keep-alive connection is dropped before a request is
// written to it rather than failing that request.
func alive(c net.Conn) bool {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	sc, ok := c.(syscall.Conn)
	if !ok {
		return true
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	ok = true
	err = rc.Read(func(fd uintptr) bool {
		var b [1]byte
		_, _, e := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		ok = errors.Is(e, syscall.EAGAIN)
		return true
	})
	return err == nil && ok
}
