package relay

import (
	"bytes"
	"encoding/binary"
	"io"
	"net"
	"testing"
	"time"

	"github.com/pires/go-proxyproto"
	"go.uber.org/goleak"
)

// TestStripsHeader: whatever header the client sends (or none), the origin
// receives exactly the payload, and a half-close still gets the reply.
func TestStripsHeader(t *testing.T) {
	defer goleak.VerifyNone(t)
	tests := []struct {
		name    string
		version byte
		payload string
	}{
		{name: "none", payload: "GET / HTTP/1.1\r\n\r\n"},
		{name: "none starting like v1", payload: "PUT /x HTTP/1.1\r\n\r\n"},
		{name: "v1", version: 1, payload: "hello over v1"},
		{name: "v2 with Azure TLV", version: 2, payload: "\x16\x03\x01 tls-ish bytes"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			origin, got := captureOrigin(t)
			addr, stop := serve(t, origin)
			defer stop()
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			var buf bytes.Buffer
			if tc.version > 0 {
				h := proxyproto.HeaderProxyFromAddrs(tc.version, c.LocalAddr(), c.RemoteAddr())
				if tc.version == 2 {
					v := []byte{1, 0, 0, 0, 0}
					binary.LittleEndian.PutUint32(v[1:], 1001)
					if err := h.SetTLVs([]proxyproto.TLV{{Type: 0xEE, Value: v}}); err != nil {
						t.Fatal(err)
					}
				}
				if _, err := h.WriteTo(&buf); err != nil {
					t.Fatal(err)
				}
			}
			buf.WriteString(tc.payload) // header and payload in one segment, as PLS sends them
			if _, err := c.Write(buf.Bytes()); err != nil {
				t.Fatal(err)
			}
			_ = c.(*net.TCPConn).CloseWrite()
			_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
			reply, err := io.ReadAll(c)
			if err != nil {
				t.Fatal(err)
			}
			if string(reply) != "ok" {
				t.Errorf("reply %q, want %q", reply, "ok")
			}
			if s := <-got; s != tc.payload {
				t.Errorf("origin got %q, want %q", s, tc.payload)
			}
		})
	}
}

func TestBadHeaderReported(t *testing.T) {
	origin, _ := captureOrigin(t)
	errs := make(chan error, 1)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := New(origin)
	r.OnError = func(err error) { errs <- err }
	go func() { _ = r.Serve(ln) }()
	defer func() { _ = ln.Close(); _ = r.Close() }()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, _ = c.Write([]byte("PROXY TCP9 garbage\r\n"))
	select {
	case err := <-errs:
		if want := "read proxy header: "; len(err.Error()) < len(want) || err.Error()[:len(want)] != want {
			t.Errorf("err = %v, want it to start with %q", err, want)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a malformed v1 header was not reported")
	}
}

// captureOrigin accepts one connection, reads to EOF, replies "ok", and
// sends what it read on the channel.
func captureOrigin(t *testing.T) (string, <-chan string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		b, _ := io.ReadAll(c)
		_, _ = c.Write([]byte("ok"))
		got <- string(b)
	}()
	t.Cleanup(func() { _ = ln.Close(); <-done })
	return ln.Addr().String(), got
}

func serve(t *testing.T, origin string) (string, func()) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := New(origin)
	done := make(chan struct{})
	go func() { defer close(done); _ = r.Serve(ln) }()
	return ln.Addr().String(), func() { _ = ln.Close(); <-done; _ = r.Close() }
}
