package proxy_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/egressd/egressd/proxy"
)

// panicCore is a zap core that keeps only what the fuzz properties need:
// how many entries mention a panic, and the first one. An observer would
// keep every line of a long fuzz run in memory.
type panicCore struct {
	mu    sync.Mutex
	count int
	first string
}

func (c *panicCore) Enabled(l zapcore.Level) bool      { return l >= zapcore.WarnLevel }
func (c *panicCore) With([]zapcore.Field) zapcore.Core { return c }
func (c *panicCore) Sync() error                       { return nil }

func (c *panicCore) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if c.Enabled(e.Level) {
		return ce.AddCore(e, c)
	}
	return ce
}

func (c *panicCore) Write(e zapcore.Entry, fields []zapcore.Field) error {
	if !strings.Contains(strings.ToLower(e.Message), "panic") {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.count++
	if c.first == "" {
		enc := zapcore.NewMapObjectEncoder()
		for _, f := range fields {
			f.AddTo(enc)
		}
		c.first = fmt.Sprintf("%s: %v", e.Message, enc.Fields["panic"])
	}
	return nil
}

// statusLine is how a reply must start: a proxy status line.
func statusLine(b []byte) bool {
	if len(b) < 13 || string(b[:9]) != "HTTP/1.1 " || b[12] != ' ' {
		return false
	}
	_, err := strconv.Atoi(string(b[9:12]))
	return err == nil
}

// healthEvery is how many fuzz inputs pass between checks that a
// normal request on a fresh connection is still served.
const healthEvery = 100

// FuzzPrologue sends arbitrary bytes (an optional PROXY v1/v2 header, then
// HTTP) to a real Server on loopback, half-closes, and reads the reply.
// Properties: the server never panics, every reply is either nothing or
// starts with an HTTP/1.1 status line, and the server still serves a
// normal request afterwards. Seeds are in testdata/fuzz/FuzzPrologue.
//
// Every upstream dial is redirected to one local origin, whatever address
// the input names: the fuzzer must never reach another loopback service.
func FuzzPrologue(f *testing.F) {
	origin := startTCPServer(f, func(c *net.TCPConn) {
		br := bufio.NewReader(c)
		if _, err := readRawHead(br); err != nil {
			return
		}
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
	})
	redirect := func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, origin)
	}
	core := &panicCore{}
	log := zap.New(core)
	cfg := proxy.Config{
		Listen:                "127.0.0.1:0",
		ProxyHeaderTimeout:    time.Second,
		ReadHeaderTimeout:     time.Second,
		ClientIdleTimeout:     time.Second,
		UpstreamIdleTimeout:   time.Second,
		TunnelIdleTimeout:     2 * time.Second,
		ResponseHeaderTimeout: 2 * time.Second,
		DialTimeout:           time.Second,
		MaxHeaderBytes:        16 << 10,
	}
	optionalPP(&cfg)
	cfg.SetDefaults()
	srv, err := proxy.New(cfg, proxy.Deps{
		Log:       log,
		AccessLog: zap.NewNop(),
		Policy:    compilePolicy(f, testACL()),
		Resolver:  loopbackResolver("up.origin.test", "example.com"),
		Dial:      redirect,
	})
	if err != nil {
		f.Fatalf("proxy.New: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		f.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	f.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		<-served
	})
	addr := ln.Addr().String()
	var runs atomic.Int64

	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 64<<10 {
			t.Skip("inputs above 64 KiB test the fuzzer, not the prologue")
		}
		reply, err := sendRaw(addr, data)
		if err != nil {
			t.Fatalf("sending %q: %v", truncate(data), err)
		}
		if len(reply) > 0 && !statusLine(reply) {
			t.Fatalf("reply %q does not start with an HTTP/1.1 status line (input %q)", truncate(reply), truncate(data))
		}
		core.mu.Lock()
		n, first := core.count, core.first
		core.mu.Unlock()
		if n > 0 {
			t.Fatalf("server logged %d panics; first: %s (input %q)", n, first, truncate(data))
		}
		if runs.Add(1)%healthEvery == 1 {
			healthCheck(t, addr)
		}
	})
}

// sendRaw writes data on a fresh connection, half-closes, and returns
// everything the server sends until it closes. A reset is a close (the
// server may close with unread input); a stall past the bound is an error.
func sendRaw(addr string, data []byte) ([]byte, error) {
	c, err := net.DialTimeout("tcp", addr, ioTimeout)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(8 * time.Second))
	// The server may refuse before reading it all; what it answered is
	// what matters, so a failed write is not a failure.
	if _, err := c.Write(data); err == nil {
		c.(*net.TCPConn).CloseWrite()
	}
	reply, err := io.ReadAll(io.LimitReader(c, 1<<20))
	var ne net.Error
	switch {
	case errors.As(err, &ne) && ne.Timeout():
		return reply, errors.New("server neither answered nor closed within 8s")
	case err != nil && !errors.Is(err, syscall.ECONNRESET):
		return reply, err
	}
	return reply, nil
}

// healthCheck asserts a plain request on a new connection still works.
func healthCheck(t *testing.T, addr string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, ioTimeout)
	if err != nil {
		t.Fatalf("health check: %v", err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(ioTimeout))
	io.WriteString(c, "GET http://up.origin.test/health HTTP/1.1\r\nHost: up.origin.test\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), &http.Request{Method: "GET"})
	if err != nil {
		t.Fatalf("health check after fuzz input: %v", err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "ok" || err != nil {
		t.Fatalf("health check: %d %q %v, want 200 ok", resp.StatusCode, body, err)
	}
}
