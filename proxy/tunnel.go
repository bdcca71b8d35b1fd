package proxy

import (
	"bufio"
	"errors"
	"io"
	"net"
	"os"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"go.uber.org/zap"
)

// spliceChunk bounds one splice call so the idle deadline and byte counts
// are refreshed regularly on a long transfer.
const spliceChunk = 4 << 20

// tunnel copies bytes both ways between a client and an upstream until
// both sides are done; an idle tunnel holds no user-space buffer and no
// kernel pipe.
type tunnel struct {
	idle     time.Duration
	lastIO   atomic.Int64 // unix nanos of the last byte either way
	failOnce sync.Once
	a, b     net.Conn
}

// detachTunnel runs the tunnel between c and upstream on two fresh
// goroutines and lets the connection's own goroutine return. That
// goroutine's stack grew while it parsed, decided and dialed; parked for
// the life of an idle tunnel it would cost several KiB per tunnel, where
// two fresh copy loops need about 2 KiB each. The tunnel shares life: the
// last copy loop to finish fills in the entry's bytes and closes the
// connection, then the exchange's ends (log line, tenant slot, tunnel
// metric) run once the connection's goroutine has let go as well.
func (c *clientConn) detachTunnel(e *entry, life *lifetime, upstream net.Conn, pending []byte) {
	s := c.s
	c.detached = true
	// The request's buffers are not read again; drop them for the tunnel's life.
	c.req.h, c.resp, c.req.path, c.req.pathBuf, c.req.connTokens = head{}, head{}, nil, nil, nil
	t := &tunnel{idle: s.cfg.TunnelIdleTimeout, a: c.raw, b: upstream}
	t.touch()
	var up, down int64
	life.finally(c.close)
	var left atomic.Int32
	left.Store(2)
	life.share()
	done := func() {
		if left.Add(-1) != 0 {
			return
		}
		upstream.Close()
		e.up, e.down = up, down
		life.done()
	}
	go func() {
		defer done()
		defer s.recoverTunnel(t)
		down = t.pipe(c.raw, upstream, nil)
	}()
	go func() {
		defer done()
		defer s.recoverTunnel(t)
		up = t.pipe(upstream, c.raw, pending)
	}()
}

// runTunnel runs the tunnel between client and upstream until both
// directions end, one of them on the caller's goroutine (used after a 101
// Switching Protocols). pendingUp and pendingDown are bytes already read
// into user space that must go out first.
func (s *Server) runTunnel(client, upstream net.Conn, pendingUp, pendingDown []byte) (up, down int64) {
	t := &tunnel{idle: s.cfg.TunnelIdleTimeout, a: client, b: upstream}
	t.touch()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer s.recoverTunnel(t)
		down = t.pipe(client, upstream, pendingDown)
	}()
	func() {
		defer s.recoverTunnel(t)
		up = t.pipe(upstream, client, pendingUp)
	}()
	wg.Wait()
	upstream.Close()
	return up, down
}

func (s *Server) recoverTunnel(t *tunnel) {
	if v := recover(); v != nil {
		s.log.Error("panic in tunnel copy", zap.Any("panic", v), zap.ByteString("stack", debug.Stack()))
		t.fail()
	}
}

func (t *tunnel) touch() { t.lastIO.Store(time.Now().UnixNano()) }

// fail closes both legs so the other direction stops too.
func (t *tunnel) fail() {
	t.failOnce.Do(func() {
		t.a.Close()
		t.b.Close()
	})
}

func (t *tunnel) idleFor() time.Duration {
	return time.Duration(time.Now().UnixNano() - t.lastIO.Load())
}

// pipe copies src to dst until EOF, then half-closes dst so the peer sees
// the EOF while the other direction keeps flowing.
//
// Each round reads what is there into a pooled buffer and writes it on;
// the buffer goes back to the pool whenever the read finds nothing, so an
// idle tunnel pins no buffer and no kernel pipe while it waits (see
// readReady). A read that fills the buffer means bulk data, and then the
// kernel splices the next chunk socket to socket.
func (t *tunnel) pipe(dst, src net.Conn, pending []byte) int64 {
	var total int64
	if len(pending) > 0 {
		n, err := dst.Write(pending)
		total += int64(n)
		if err != nil {
			t.fail()
			return total
		}
	}
	srcTCP, sok := src.(*net.TCPConn)
	dstTCP, dok := dst.(*net.TCPConn)
	lr := &io.LimitedReader{}
	for {
		if t.idle > 0 {
			src.SetReadDeadline(time.Now().Add(t.idle))
		}
		var n int64
		var err error
		var full bool
		if sok {
			n, full, err = copyReady(dst, srcTCP)
		} else {
			n, full, err = copyOnce(dst, src)
		}
		if err == nil && full && sok && dok {
			lr.R, lr.N = srcTCP, spliceChunk
			var m int64
			m, err = io.Copy(dstTCP, lr)
			n += m
			if err == nil && lr.N > 0 {
				err = io.EOF
			}
		}
		total += n
		if n > 0 {
			t.touch()
		}
		switch {
		case err == nil:
			continue
		case errors.Is(err, io.EOF):
			closeWrite(dst)
			return total
		case isTimeout(err) && t.idleFor() < t.idle:
			continue // the other direction is busy; this one may idle
		default:
			t.fail()
			return total
		}
	}
}

// copyOnce moves one read's worth of bytes from src to dst through a
// pooled buffer; full reports that the read filled it.
func copyOnce(dst, src net.Conn) (n int64, full bool, err error) {
	bufp := copyBufPool.Get().(*[]byte)
	defer copyBufPool.Put(bufp)
	nr, err := src.Read(*bufp)
	return writeRead(dst, *bufp, nr, err)
}

// copyReady is copyOnce for a TCP source, without pinning the buffer
// while src has nothing to read: the read is tried inside the poller's
// callback, and on EAGAIN the buffer goes back to the pool before the
// goroutine parks. A message that is already there costs one read and one
// write. (It replaces a MSG_PEEK wait followed by the read: one syscall
// fewer per message that was waiting, about 2.4 of the 53 syscalls of a
// new tunnel; issue 18, bench/PROFILE.md.)
func copyReady(dst net.Conn, src *net.TCPConn) (n int64, full bool, err error) {
	bufp, nr, err := readReady(src)
	if bufp == nil {
		return 0, false, err
	}
	defer copyBufPool.Put(bufp)
	return writeRead(dst, *bufp, nr, err)
}

// writeRead finishes a copy step: it writes the nr bytes a read left in
// buf to dst and reports them, and whether the read filled buf, with the
// write's error or else the read's.
func writeRead(dst net.Conn, buf []byte, nr int, rerr error) (n int64, full bool, err error) {
	if nr > 0 {
		nw, werr := dst.Write(buf[:nr])
		if werr != nil {
			return int64(nw), false, werr
		}
		n = int64(nw)
	}
	return n, nr == len(buf), rerr
}

// readReady waits until c is readable and reads into a pooled buffer,
// holding the buffer only while a read is under way. bufp is nil when
// nothing was read; the caller returns a non-nil bufp to copyBufPool. EOF
// is reported as io.EOF with the bytes read before it, like net.Conn.Read.
func readReady(c *net.TCPConn) (bufp *[]byte, n int, err error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return nil, 0, err
	}
	var rerr error
	err = rc.Read(func(fd uintptr) bool {
		bufp = copyBufPool.Get().(*[]byte)
		for {
			n, rerr = syscall.Read(int(fd), *bufp)
			if rerr != syscall.EINTR {
				break
			}
		}
		if rerr == syscall.EAGAIN {
			copyBufPool.Put(bufp)
			bufp = nil
			return false // park with no buffer; the poller calls again
		}
		return true
	})
	switch {
	case err != nil: // deadline or closed: no read happened
		if bufp != nil {
			copyBufPool.Put(bufp)
		}
		return nil, 0, err
	case rerr != nil:
		copyBufPool.Put(bufp)
		return nil, 0, &net.OpError{Op: "read", Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: os.NewSyscallError("read", rerr)}
	case n == 0:
		copyBufPool.Put(bufp)
		return nil, 0, io.EOF
	}
	return bufp, n, nil
}

type closeWriter interface{ CloseWrite() error }

func closeWrite(c net.Conn) {
	if cw, ok := c.(closeWriter); ok {
		cw.CloseWrite()
		return
	}
	c.Close()
}

// waitReadable parks until c has data, EOF or an error, without reading.
func waitReadable(c *net.TCPConn) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	first := true
	return rc.Read(func(fd uintptr) bool {
		if !first {
			// The poller woke us: data, EOF or an error is there. Peeking
			// again would cost a syscall per message; after a rare spurious
			// wakeup the read below simply waits.
			return true
		}
		first = false
		var b [1]byte
		_, _, e := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		// EAGAIN: nothing yet, let the poller wait. Anything else (data,
		// EOF, an error) is for the real read to report.
		return !errors.Is(e, syscall.EAGAIN)
	})
}

// bufferedBytes takes what br already holds so it can be sent ahead of a
// raw copy; br is empty afterwards.
func bufferedBytes(br *bufio.Reader) []byte {
	n := br.Buffered()
	if n == 0 {
		return nil
	}
	b, _ := br.Peek(n)
	out := append([]byte(nil), b...)
	br.Discard(n)
	return out
}
