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

// poolUpstreams serves plain requests from the server's pool.
type poolUpstreams struct{ s *Server }

func (p poolUpstreams) take(key poolKey, t acl.Target, check func(netip.Addr) acl.Decision) (*upConn, bool, error) {
	if up := p.s.pool.get(key); up != nil {
		if check(up.addr.Addr()).Action == acl.Allow {
			return up, true, nil
		}
		// Pooled for a tenant whose rules allowed that address; not this one.
		up.conn.Close()
	}
	up, err := p.s.dialUpstream(key, t, check)
	return up, false, err
}

func (p poolUpstreams) put(up *upConn) { p.s.pool.put(up) }

// upConn is one upstream connection with its own buffers.
type upConn struct {
	conn   net.Conn
	br     *bufio.Reader
	bw     *bufio.Writer
	addr   netip.AddrPort
	key    poolKey
	idleAt time.Time
}

type poolKey struct {
	tls  bool
	host string
	port uint16
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

// freshIdle is how long a pooled connection is trusted without a peek.
const freshIdle = time.Second

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
		idle := now.Sub(u.idleAt)
		// A connection parked a moment ago is almost never stale, and a
		// replayable request is retried if it was; skip the peek syscall
		// on the hot path of back-to-back requests.
		if idle < p.timeout && (idle < freshIdle || alive(u.conn)) {
			return u
		}
		u.conn.Close()
	}
}

// put parks u for reuse, or closes it when the pool for its origin is full.
func (p *upstreamPool) put(u *upConn) {
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
