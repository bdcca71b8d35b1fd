package proxy

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
)

// These tests drive runTunnel and tunnel.pipe on loopback TCP pairs (the
// splice and poller paths) and net.Pipe (the plain copy path):
//
//	clientApp <-> clientLeg | tunnel | upstreamLeg <-> originApp

type tunnelEnds struct {
	clientApp, clientLeg   *net.TCPConn
	upstreamLeg, originApp *net.TCPConn
}

func newTunnelEnds(t *testing.T) tunnelEnds {
	var e tunnelEnds
	e.clientApp, e.clientLeg = tcpPair(t)
	e.upstreamLeg, e.originApp = tcpPair(t)
	return e
}

type tunnelResult struct{ up, down int64 }

func startTunnel(t *testing.T, idle time.Duration, client, upstream net.Conn, pendingUp, pendingDown string) <-chan tunnelResult {
	t.Helper()
	s := &Server{cfg: Config{TunnelIdleTimeout: idle}, log: zap.NewNop()}
	done := make(chan tunnelResult, 1)
	go func() {
		up, down := s.runTunnel(client, upstream, []byte(pendingUp), []byte(pendingDown))
		done <- tunnelResult{up, down}
	}()
	return done
}

func readAllWithin(t *testing.T, c net.Conn, d time.Duration) string {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(d))
	b, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("read: %v (after %q)", err, b)
	}
	return string(b)
}

func waitTunnel(t *testing.T, done <-chan tunnelResult, d time.Duration) tunnelResult {
	t.Helper()
	select {
	case r := <-done:
		return r
	case <-time.After(d):
		t.Fatalf("tunnel still running after %v", d)
		return tunnelResult{}
	}
}

// TestRunTunnelHalfCloseKeepsTheOtherDirection: the client's EOF reaches the
// origin as EOF while the origin's answer still flows back; bytes already
// read into user space go out first, and both counts include them.
func TestRunTunnelHalfCloseKeepsTheOtherDirection(t *testing.T) {
	t.Parallel()
	e := newTunnelEnds(t)
	done := startTunnel(t, 10*time.Second, e.clientLeg, e.upstreamLeg, "early-up|", "early-down|")

	e.clientApp.Write([]byte("request"))
	e.clientApp.CloseWrite()
	if got := readAllWithin(t, e.originApp, 5*time.Second); got != "early-up|request" {
		t.Fatalf("origin read %q, want the pending bytes then the request, then EOF", got)
	}
	e.originApp.Write([]byte("response after the client's EOF"))
	e.originApp.CloseWrite()
	if got := readAllWithin(t, e.clientApp, 5*time.Second); got != "early-down|response after the client's EOF" {
		t.Fatalf("client read %q", got)
	}
	r := waitTunnel(t, done, 5*time.Second)
	if r.up != int64(len("early-up|request")) || r.down != int64(len("early-down|response after the client's EOF")) {
		t.Errorf("counted up %d down %d", r.up, r.down)
	}
}

// TestRunTunnelMovesBulkDataIntact: a transfer larger than the copy buffer
// takes the splice path; every byte arrives in order.
func TestRunTunnelMovesBulkDataIntact(t *testing.T) {
	t.Parallel()
	e := newTunnelEnds(t)
	done := startTunnel(t, 10*time.Second, e.clientLeg, e.upstreamLeg, "", "")
	payload := bytes.Repeat([]byte("0123456789abcdef"), 3<<16) // 3 MiB
	go func() {
		e.originApp.Write(payload)
		e.originApp.CloseWrite()
	}()
	e.clientApp.CloseWrite()
	got := readAllWithin(t, e.clientApp, 20*time.Second)
	if sha256.Sum256([]byte(got)) != sha256.Sum256(payload) {
		t.Fatalf("client got %d bytes, not the %d sent", len(got), len(payload))
	}
	if r := waitTunnel(t, done, 5*time.Second); r.down != int64(len(payload)) || r.up != 0 {
		t.Errorf("counted up %d down %d, want 0 and %d", r.up, r.down, len(payload))
	}
}

// TestRunTunnelIdleTimeout: a tunnel with no bytes either way for the idle
// timeout closes both legs; one that is busy in one direction stays open
// in the other, quiet one.
func TestRunTunnelIdleTimeout(t *testing.T) {
	t.Parallel()
	const idle = 150 * time.Millisecond

	t.Run("quiet both ways", func(t *testing.T) {
		t.Parallel()
		e := newTunnelEnds(t)
		start := time.Now()
		done := startTunnel(t, idle, e.clientLeg, e.upstreamLeg, "", "")
		waitTunnel(t, done, 5*time.Second)
		if el := time.Since(start); el < idle {
			t.Errorf("closed after %v, before the idle timeout %v", el, idle)
		}
		e.clientApp.SetReadDeadline(time.Now().Add(2 * time.Second))
		if _, err := e.clientApp.Read(make([]byte, 1)); err == nil || isTimeout(err) {
			t.Errorf("client leg after the idle timeout: read %v, want closed", err)
		}
	})

	t.Run("busy one way", func(t *testing.T) {
		t.Parallel()
		e := newTunnelEnds(t)
		done := startTunnel(t, idle, e.clientLeg, e.upstreamLeg, "", "")
		// The origin streams for four idle timeouts; the client says
		// nothing the whole time.
		go func() {
			for range 20 {
				if _, err := e.originApp.Write([]byte("tick\n")); err != nil {
					return
				}
				time.Sleep(idle / 5)
			}
		}()
		br := bufio.NewReader(e.clientApp)
		e.clientApp.SetReadDeadline(time.Now().Add(10 * time.Second))
		for i := range 20 {
			if line, err := br.ReadString('\n'); err != nil || line != "tick\n" {
				t.Fatalf("tick %d: %q, %v: the quiet direction closed a busy tunnel", i, line, err)
			}
		}
		// Then both fall quiet and the tunnel ends.
		waitTunnel(t, done, 5*time.Second)
	})
}

// TestRunTunnelOverNonTCPConns: a tunnel leg that is not a TCP socket (an
// inspected TLS leg, a test pipe) takes the plain copy path, and its EOF
// closes the other leg, which cannot half-close.
func TestRunTunnelOverNonTCPConns(t *testing.T) {
	t.Parallel()
	clientApp, clientLeg := net.Pipe()
	upstreamLeg, originApp := net.Pipe()
	t.Cleanup(func() { clientApp.Close(); originApp.Close() })
	done := startTunnel(t, 10*time.Second, clientLeg, upstreamLeg, "", "pending|")
	pending := make(chan string, 1)
	go func() {
		b := make([]byte, len("pending|"))
		io.ReadFull(clientApp, b)
		pending <- string(b)
		clientApp.Write([]byte("ping"))
		clientApp.Close()
	}()
	buf := make([]byte, 4)
	originApp.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(originApp, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("origin read %q, %v", buf, err)
	}
	// The client's close ends the upstream leg as a whole (net.Pipe has no
	// CloseWrite): the origin sees EOF.
	if _, err := originApp.Read(buf); err != io.EOF {
		t.Fatalf("origin read %v after the client closed, want EOF", err)
	}
	if got := <-pending; got != "pending|" {
		t.Errorf("client read %q first, want the pending bytes", got)
	}
	r := waitTunnel(t, done, 5*time.Second)
	if r.up != 4 || r.down != int64(len("pending|")) {
		t.Errorf("counted up %d down %d, want 4 and %d", r.up, r.down, len("pending|"))
	}
}

// TestPipeWriteFailureClosesBothLegs: when one leg cannot be written,
// the tunnel closes both, so the other direction does not wait for its
// idle timeout.
func TestPipeWriteFailureClosesBothLegs(t *testing.T) {
	t.Parallel()
	e := newTunnelEnds(t)
	dead, _ := tcpPair(t)
	dead.Close()
	tn := &tunnel{idle: time.Minute, a: e.clientLeg, b: dead}
	tn.touch()
	n := tn.pipe(dead, e.clientLeg, []byte("pending"))
	if n != 0 {
		t.Errorf("counted %d bytes written to a closed leg", n)
	}
	e.clientApp.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := e.clientApp.Read(make([]byte, 1)); err == nil || isTimeout(err) {
		t.Errorf("client leg after the failure: read %v, want closed", err)
	}
}

func TestBufferedBytesTakesACopyAndEmptiesTheReader(t *testing.T) {
	t.Parallel()
	br := bufio.NewReaderSize(strings.NewReader("buffered-and-more"), 16)
	if _, err := br.Peek(8); err != nil {
		t.Fatal(err)
	}
	got := bufferedBytes(br)
	if string(got) != "buffered-and-mor" || br.Buffered() != 0 {
		t.Fatalf("took %q, %d left buffered", got, br.Buffered())
	}
	rest, _ := io.ReadAll(br)
	if string(got) != "buffered-and-mor" || string(rest) != "e" {
		t.Errorf("after reading on: took %q (must not alias the buffer), rest %q", got, rest)
	}
	if b := bufferedBytes(bufio.NewReader(strings.NewReader(""))); b != nil {
		t.Errorf("empty reader gave %q, want nil", b)
	}
}

// TestWaitReadableParksUntilDataArrives: it returns only once the peer
// sent something, and consumes nothing.
func TestWaitReadableParksUntilDataArrives(t *testing.T) {
	t.Parallel()
	c, peer := tcpPair(t)
	done := make(chan error, 1)
	go func() { done <- waitReadable(c) }()
	select {
	case err := <-done:
		t.Fatalf("returned %v with nothing sent", err)
	case <-time.After(100 * time.Millisecond):
	}
	peer.Write([]byte("x"))
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("still parked after the peer wrote")
	}
	b := make([]byte, 1)
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Read(b); err != nil || b[0] != 'x' {
		t.Errorf("byte after waitReadable: %q, %v (it must not consume)", b, err)
	}
}
