package proxy_test

// Hostile HTTP/2 inside an inspected tunnel (issue 17): the known HTTP/2
// denial-of-service classes, rapid reset (CVE-2023-44487), CONTINUATION
// without END_HEADERS (CVE-2023-45288) and SETTINGS floods, end in a
// bounded number of goroutines and bytes, and the proxy keeps serving.

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/egressd/egressd/acl"
	"github.com/egressd/egressd/proxy"
)

// h2Raw opens a bumped tunnel to target and speaks raw HTTP/2 frames on
// it: the client preface and an empty SETTINGS are already sent.
func h2Raw(t *testing.T, s *testProxy, target string) (*http2.Framer, func()) {
	fr, _, closeConn := h2RawConn(t, s, target)
	return fr, closeConn
}

// h2RawConn is h2Raw that also returns the TCP connection under the TLS.
func h2RawConn(t *testing.T, s *testProxy, target string) (*http2.Framer, *net.TCPConn, func()) {
	t.Helper()
	host, _, _ := strings.Cut(target, ":")
	tc, err := tlsVia(s.addr, target, host, s.pki.corpPool, "h2")
	if err != nil {
		t.Fatal(err)
	}
	if p := tc.ConnectionState().NegotiatedProtocol; p != "h2" {
		t.Fatalf("ALPN %q, want h2", p)
	}
	tc.SetDeadline(time.Now().Add(20 * time.Second))
	io.WriteString(tc, http2.ClientPreface)
	fr := http2.NewFramer(tc, tc)
	fr.WriteSettings()
	return fr, tc.NetConn().(*net.TCPConn), func() { tc.Close() }
}

// headerBlock is an HPACK block for a GET of path on authority, plus
// extra literal fields.
func headerBlock(authority, path string, extra int, size int) []byte {
	var buf bytes.Buffer
	enc := hpack.NewEncoder(&buf)
	for _, f := range [][2]string{{":method", "GET"}, {":scheme", "https"}, {":authority", authority}, {":path", path}} {
		enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	for i := range extra {
		enc.WriteField(hpack.HeaderField{Name: fmt.Sprintf("x-junk-%d", i), Value: strings.Repeat("j", size), Sensitive: true})
	}
	return buf.Bytes()
}

// readUntilGone reads frames until the proxy ends the connection (GOAWAY,
// EOF or reset) and reports whether it did before the deadline.
func readUntilGone(fr *http2.Framer) (goaway bool, err error) {
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			return goaway, err
		}
		if _, ok := f.(*http2.GoAwayFrame); ok {
			goaway = true
		}
	}
}

// goroutinePeak samples the goroutine count until stop is closed.
func goroutinePeak(stop <-chan struct{}) <-chan int {
	out := make(chan int, 1)
	go func() {
		peak := 0
		for {
			peak = max(peak, runtime.NumGoroutine())
			select {
			case <-stop:
				out <- peak
				return
			case <-time.After(2 * time.Millisecond):
			}
		}
	}()
	return out
}

func TestHostileH2InsideABumpIsBounded(t *testing.T) {
	pki := newTrustSet(t)
	var reached atomic.Int32
	block := make(chan struct{})
	t.Cleanup(func() { close(block) })
	o := startH2Origin(t, pki.leaf(t, leafSpec{names: []string{"api.origin.test"}}, nil),
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/ok" {
				io.WriteString(w, "ok")
				return
			}
			reached.Add(1)
			select { // a slow origin, so reset streams pile up if nothing bounds them
			case <-block:
			case <-r.Context().Done():
			}
		}))
	const maxStreams = 10
	s := startProxy(t, withInspection(pki, acl.TLSInspectionConfig{Mode: "bump"}), withConfig(func(c *proxy.Config) { c.H2MaxConcurrentStreams = maxStreams; c.MaxHeaderBytes = 16 << 10 }))
	target := "api.origin.test:" + o.port
	authority := target

	serves := func(t *testing.T) {
		t.Helper()
		resp, err := h2Client(t, s).Get("https://" + target + "/ok")
		if err != nil {
			t.Fatalf("a normal h2 request afterwards: %v", err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(b) != "ok" || resp.ProtoMajor != 2 {
			t.Fatalf("a normal h2 request afterwards: %s %d %q", resp.Proto, resp.StatusCode, b)
		}
	}
	settle := func(t *testing.T, base int) {
		t.Helper()
		waitFor(t, 10*time.Second, "goroutines to settle", func() bool { return runtime.NumGoroutine() <= base+20 })
	}

	t.Run("rapid reset", func(t *testing.T) {
		base := runtime.NumGoroutine()
		stop := make(chan struct{})
		peak := goroutinePeak(stop)
		fr, closeConn := h2Raw(t, s, target)
		const streams = 2000
		var werr error
		for i := range streams {
			id := uint32(2*i + 1)
			if werr = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: headerBlock(authority, "/slow", 0, 0), EndHeaders: true, EndStream: true}); werr != nil {
				break
			}
			if werr = fr.WriteRSTStream(id, http2.ErrCodeCancel); werr != nil {
				break
			}
		}
		closeConn()
		close(stop)
		if p := <-peak - base; p > 40*maxStreams {
			t.Errorf("goroutines peaked %d above the baseline for %d reset streams, want a bound near the %d stream limit", p, streams, maxStreams)
		}
		if n := reached.Load(); n >= streams/2 {
			t.Errorf("origin saw %d of %d reset streams", n, streams)
		}
		t.Logf("wrote until %v; origin saw %d streams", werr, reached.Load())
		settle(t, base)
		serves(t)
	})

	t.Run("CONTINUATION without END_HEADERS", func(t *testing.T) {
		base := runtime.NumGoroutine()
		fr, closeConn := h2Raw(t, s, target)
		defer closeConn()
		junk := headerBlock(authority, "/cont", 64, 1000) // about 64 KB of fields, over the 16 KiB limit
		var sent atomic.Int64
		done := make(chan error, 1)
		go func() {
			err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: junk[:1000]})
			for err == nil && sent.Load() < 64<<20 {
				err = fr.WriteContinuation(1, false, junk[1000:])
				sent.Add(int64(len(junk) - 1000))
			}
			done <- err
		}()
		_, rerr := readUntilGone(fr)
		closeConn()
		werr := <-done
		if sent.Load() >= 64<<20 {
			t.Errorf("the proxy read %d bytes of one header block without ending the connection (read: %v)", sent.Load(), rerr)
		}
		t.Logf("proxy ended the connection after %d bytes (read: %v, write: %v)", sent.Load(), rerr, werr)
		settle(t, base)
		serves(t)
	})

	t.Run("SETTINGS flood", func(t *testing.T) {
		base := runtime.NumGoroutine()
		stop := make(chan struct{})
		peak := goroutinePeak(stop)
		fr, raw, closeConn := h2RawConn(t, s, target)
		defer closeConn()
		// Not read meanwhile, with a tiny receive window: every SETTINGS
		// owes an ACK, and they queue on the proxy's side, which x/net
		// bounds (a connection with more than 10,000 control frames queued
		// is closed).
		raw.SetReadBuffer(1024)
		var werr error
		n := 0
		for ; n < 40000 && werr == nil; n++ {
			werr = fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 65535})
		}
		if werr == nil {
			werr = fr.WritePing(false, [8]byte{'e', 'g', 'r', 'e', 's', 's', 'd'})
		}
		// Either the proxy closed the connection, or it is still a working
		// HTTP/2 connection that answers the PING after all the ACKs.
		outcome := "closed"
		for werr == nil {
			f, err := fr.ReadFrame()
			if err != nil {
				break
			}
			if p, ok := f.(*http2.PingFrame); ok && p.IsAck() {
				outcome = "answered"
				break
			}
		}
		close(stop)
		if p := <-peak - base; p > 100 {
			t.Errorf("goroutines peaked %d above the baseline during a SETTINGS flood", p)
		}
		t.Logf("after %d SETTINGS frames the connection was %s (write: %v)", n, outcome, werr)
		closeConn()
		settle(t, base)
		serves(t)
	})
}
