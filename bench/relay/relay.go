// Package relay is the bench's physical floor: a plain TCP relay that
// forwards every connection to one fixed origin with io.Copy between two
// *net.TCPConn, so Linux moves the bytes with splice(2) and no user-space
// copy. A proxy cannot do less work per byte than this, so its figures are
// the denominator of "ratio to the floor" in RESULTS.md.
//
// Like a PLS-facing proxy it accepts an optional PROXY header (v1 or v2) and
// strips it; the origin never sees it.
package relay

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/pires/go-proxyproto"
)

// Timeouts of the relay's own steps; the copy itself has none, so idle
// tunnels stay open for the idle mode.
const (
	headerTimeout = 5 * time.Second
	dialTimeout   = 5 * time.Second
)

// Relay forwards connections to its origin.
type Relay struct {
	// OnError, when set before Serve, is told why a connection ended early
	// (a bad PROXY header, an unreachable origin). The relay has no log of
	// its own: the bench client reports the failure it saw.
	OnError func(error)

	origin string
	dialer net.Dialer

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup
}

// New returns a relay to origin (host:port).
func New(origin string) *Relay {
	return &Relay{origin: origin, dialer: net.Dialer{Timeout: dialTimeout}, conns: map[net.Conn]struct{}{}}
}

// Serve accepts on ln until ln is closed; it then returns nil.
func (r *Relay) Serve(ln net.Listener) error {
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			// EMFILE under idle load: wait for descriptors rather than spin.
			time.Sleep(10 * time.Millisecond)
			continue
		}
		tc, ok := c.(*net.TCPConn)
		if !ok || !r.track(c) {
			_ = c.Close()
			continue
		}
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			defer r.untrack(c)
			if err := r.handle(tc); err != nil && r.OnError != nil {
				r.OnError(err)
			}
		}()
	}
}

// Close closes every open connection and waits for their goroutines. The
// caller closes the listener.
func (r *Relay) Close() error {
	r.mu.Lock()
	r.closed = true
	for c := range r.conns {
		_ = c.Close()
	}
	r.mu.Unlock()
	r.wg.Wait()
	return nil
}

func (r *Relay) track(c net.Conn) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return false
	}
	r.conns[c] = struct{}{}
	return true
}

func (r *Relay) untrack(c net.Conn) {
	r.mu.Lock()
	delete(r.conns, c)
	r.mu.Unlock()
	_ = c.Close()
}

func (r *Relay) handle(client *net.TCPConn) error {
	_ = client.SetReadDeadline(time.Now().Add(headerTimeout))
	// A small buffer: whatever it reads past the header is forwarded below.
	br := bufio.NewReaderSize(client, 512)
	if _, err := proxyproto.Read(br); err != nil && !errors.Is(err, proxyproto.ErrNoProxyProtocol) {
		return fmt.Errorf("read proxy header: %w", err)
	}
	_ = client.SetReadDeadline(time.Time{})

	oc, err := r.dialer.Dial("tcp", r.origin)
	if err != nil {
		return fmt.Errorf("dial origin %s: %w", r.origin, err)
	}
	origin := oc.(*net.TCPConn)
	if !r.track(origin) {
		_ = origin.Close()
		return errors.New("relay: closed")
	}
	defer r.untrack(origin)

	if n := br.Buffered(); n > 0 {
		early, _ := br.Peek(n) // n bytes are buffered: Peek cannot fail
		if _, err := origin.Write(early); err != nil {
			return fmt.Errorf("forward early bytes: %w", err)
		}
	}
	// From here on the bufio.Reader is empty and unused, so both directions
	// copy between *net.TCPConn and take the splice path.
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		copyHalf(origin, client)
	}()
	copyHalf(client, origin)
	wg.Wait()
	return nil
}

// copyHalf copies one direction and passes the EOF on with a half-close, so
// a client that closes its write side still gets the whole response.
func copyHalf(dst, src *net.TCPConn) {
	_, err := io.Copy(dst, src)
	if err != nil {
		// A reset on one side: tear down both so the other copy ends too.
		_ = dst.Close()
		_ = src.Close()
		return
	}
	_ = dst.CloseWrite()
}
