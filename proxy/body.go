package proxy

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http/httputil"
	"sync"
	"time"
)

// framing is how a message body is delimited (RFC 9112 §6.3).
type framing uint8

const (
	bodyNone framing = iota
	bodyLength
	bodyChunked
	bodyClose // read until the sender closes; responses only
)

var copyBufPool = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// spliceThreshold is the body size above which a fixed-length body skips
// user space: both legs are plain TCP, so the kernel moves the bytes.
const spliceThreshold = 64 << 10

// bodyCopy streams one message body from a peer's reader to the other
// peer's writer, re-framing as asked. It never buffers a whole body:
// bytes are flushed as soon as the source has nothing more buffered.
type bodyCopy struct {
	src     *bufio.Reader
	srcConn net.Conn
	dst     *bufio.Writer
	dstConn net.Conn
	idle    time.Duration // per-read and per-write stall bound
	// connTokens are the fields the message's Connection header listed:
	// hop-by-hop, so not forwarded in its trailer either.
	connTokens [][]byte
}

var errChunkTrailer = errors.New("proxy: malformed chunked trailer")

// relayError says which side of a body copy failed, so a client that left
// is not logged (and alerted on) as an upstream failure, and the reverse.
type relayError struct {
	srcSide bool // the sender failed (or ended early); otherwise the receiver did
	err     error
}

func (e *relayError) Error() string { return e.err.Error() }
func (e *relayError) Unwrap() error { return e.err }

func srcErr(err error) error { return &relayError{srcSide: true, err: err} }
func dstErr(err error) error { return &relayError{srcSide: false, err: err} }

// copy moves the body framed as f (n bytes for bodyLength) and writes it
// chunked when outChunked is set. It returns the body bytes moved.
func (b *bodyCopy) copy(f framing, n int64, outChunked bool) (int64, error) {
	if f == bodyNone {
		return 0, nil
	}
	var r io.Reader = b.src
	switch f {
	case bodyLength:
		if !outChunked && n >= spliceThreshold {
			return b.spliceFixed(n)
		}
		r = io.LimitReader(b.src, n)
	case bodyChunked:
		r = newChunkedReader(b.src)
	}
	var w io.Writer = b.dst
	var cw io.WriteCloser
	if outChunked {
		cw = httputil.NewChunkedWriter(b.dst)
		w = cw
	}
	bufp := copyBufPool.Get().(*[]byte)
	defer copyBufPool.Put(bufp)
	buf := *bufp
	var total int64
	for {
		b.deadline()
		nr, rerr := r.Read(buf)
		if nr > 0 {
			nw, werr := w.Write(buf[:nr])
			total += int64(nw)
			if werr != nil {
				return total, dstErr(werr)
			}
			if b.src.Buffered() == 0 {
				if err := b.dst.Flush(); err != nil {
					return total, dstErr(err)
				}
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return total, srcErr(rerr)
		}
	}
	if f == bodyLength && total < n {
		return total, srcErr(io.ErrUnexpectedEOF)
	}
	switch {
	case f == bodyChunked && cw != nil:
		cw.Close() // the last chunk; the trailer section follows it
		if err := forwardTrailer(b.src, b.dst, b.connTokens); err != nil {
			return total, srcErr(err)
		}
	case f == bodyChunked:
		// Re-framed by close (an HTTP/1.0 client): nowhere to put trailers.
		if err := skipTrailer(b.src); err != nil {
			return total, srcErr(err)
		}
	case cw != nil:
		cw.Close()
		b.dst.WriteString("\r\n")
	}
	if err := b.dst.Flush(); err != nil {
		return total, dstErr(err)
	}
	return total, nil
}

// spliceFixed sends what is already buffered, then lets the kernel move
// the rest of a fixed-length body between the two TCP sockets.
func (b *bodyCopy) spliceFixed(n int64) (int64, error) {
	var total int64
	if k := int64(b.src.Buffered()); k > 0 {
		if k > n {
			k = n
		}
		w, err := io.CopyN(b.dst, b.src, k)
		total += w
		if err != nil {
			return total, dstErr(err) // the bytes were already buffered
		}
	}
	if err := b.dst.Flush(); err != nil {
		return total, dstErr(err)
	}
	src, sok := b.srcConn.(*net.TCPConn)
	dst, dok := b.dstConn.(*net.TCPConn)
	lr := &io.LimitedReader{N: spliceChunk}
	for total < n {
		b.deadline()
		want := min(n-total, spliceChunk)
		var w int64
		var err error
		if sok && dok {
			lr.R, lr.N = src, want
			w, err = io.Copy(dst, lr)
		} else {
			w, err = io.CopyN(b.dstConn, b.src, want)
		}
		total += w
		if err != nil {
			// splice reports one error for both sockets; a receiver that
			// has gone away is the one that fails the liveness peek.
			if !alive(b.dstConn) {
				return total, dstErr(err)
			}
			return total, srcErr(err)
		}
		if w < want {
			return total, srcErr(io.ErrUnexpectedEOF)
		}
	}
	return total, nil
}

func (b *bodyCopy) deadline() {
	if b.idle > 0 {
		t := time.Now().Add(b.idle)
		b.srcConn.SetReadDeadline(t)
		b.dstConn.SetWriteDeadline(t)
	}
}

// skipTrailer consumes the trailer section after the last chunk of a body
// that is not sent on chunked (see forwardTrailer for one that is).
func skipTrailer(br *bufio.Reader) error {
	for total := 0; ; {
		line, err := br.ReadSlice('\n')
		total += len(line)
		if err != nil || total > 8<<10 {
			return errChunkTrailer
		}
		if len(line) <= 2 && (len(line) == 1 || line[0] == '\r') {
			return nil
		}
	}
}
