package main

// These tests run the real binary, built once in TestMain, as an operator
// would: signals, exit codes, the admin port and the messages on stderr
// are the contract here, so nothing is called in-process.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/egressd/egressd/internal/lockedbuf"
)

const testVersion = "v0.0.0-test"

var binPath string

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "egressd-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	binPath = filepath.Join(dir, "egressd")
	// `go test` puts its own toolchain first on PATH for the test binary.
	goTool, err := exec.LookPath("go")
	if err != nil {
		fmt.Fprintln(os.Stderr, "go not found on PATH:", err)
		return 1
	}
	build := exec.Command(goTool, "build", "-ldflags", "-X main.version="+testVersion, "-o", binPath, ".")
	build.Env = append(os.Environ(), "GOTOOLCHAIN=local")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build egressd: %v\n%s", err, out)
		return 1
	}
	return m.Run()
}

// egressd runs the binary to completion with a bound.
func egressd(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	return egressdStdin(t, "", args...)
}

// egressdStdin is egressd with stdin fed from in.
func egressdStdin(t *testing.T, in string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binPath, args...)
	cmd.Stdin = strings.NewReader(in)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		code = ee.ExitCode()
	default:
		t.Fatalf("run egressd %s: %v", strings.Join(args, " "), err)
	}
	return out.String(), errOut.String(), code
}

func writeConfig(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "egressd.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// validConfig is a complete config for loopback ports proxy and admin.
func validConfig(proxy, admin string) string {
	return drainConfig(proxy, admin, "0s")
}

// drainConfig is validConfig with a drain_delay: how long the proxy port
// keeps accepting after SIGTERM while probes already fail.
func drainConfig(proxy, admin, delay string) string {
	return `proxy:
  listen: "` + proxy + `"
  proxy_protocol: optional
  trusted_proxies: ["127.0.0.0/8"]
  drain_timeout: 10s
  drain_delay: ` + delay + `
admin:
  listen: "` + admin + `"
log:
  level: info
tenants:
  - name: demo
    link_ids: [1001]
    source_cidrs: ["127.0.0.0/8"]
    rules:
      - name: loopback-origins
        cidrs: ["127.0.0.0/8"]
`
}

func TestVersion(t *testing.T) {
	t.Parallel()
	stdout, stderr, code := egressd(t, "version")
	want := "egressd " + testVersion + " " + runtime.Version() + "\n"
	if code != 0 || stdout != want {
		t.Fatalf("exit %d, stdout %q (stderr %q); want 0 and %q", code, stdout, stderr, want)
	}
}

func TestCheck(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		config     string // "" runs check without -config
		wantCode   int
		wantStdout []string
		wantStderr []string // each must appear; "CONFIG" is replaced by the file's path
	}{
		{
			name:       "valid config",
			config:     validConfig("127.0.0.1:3128", "127.0.0.1:9090"),
			wantStdout: []string{"CONFIG: OK config_hash=", "tenants: 1 [demo]", "proxy_protocol optional"},
		},
		{
			name:       "unknown key names its line and the likely key",
			config:     "proxy:\n  listen: \"127.0.0.1:3128\"\n  listn: \"127.0.0.1:3129\"\n",
			wantCode:   1,
			wantStderr: []string{"egressd check: CONFIG:3: proxy.listn: unknown key (did you mean listen?)"},
		},
		{
			name: "invalid value names its path and line",
			config: strings.Replace(validConfig("127.0.0.1:3128", "127.0.0.1:9090"),
				"proxy_protocol: optional", "proxy_protocol: sometimes", 1),
			wantCode:   1,
			wantStderr: []string{`CONFIG:3: proxy.proxy_protocol: "sometimes": must be required, optional or off`},
		},
		{
			name:       "empty config",
			config:     "# nothing here\n",
			wantCode:   1,
			wantStderr: []string{"CONFIG: config is empty"},
		},
		{
			name:       "no -config",
			wantCode:   2,
			wantStderr: []string{"egressd check: -config FILE is required"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			args := []string{"check"}
			path := ""
			if tc.config != "" {
				path = writeConfig(t, tc.config)
				args = append(args, "-config", path)
			}
			stdout, stderr, code := egressd(t, args...)
			if code != tc.wantCode {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tc.wantCode, stdout, stderr)
			}
			for _, w := range tc.wantStdout {
				if w = strings.ReplaceAll(w, "CONFIG", path); !strings.Contains(stdout, w) {
					t.Errorf("stdout lacks %q:\n%s", w, stdout)
				}
			}
			for _, w := range tc.wantStderr {
				if w = strings.ReplaceAll(w, "CONFIG", path); !strings.Contains(stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, stderr)
				}
			}
		})
	}
}

func TestUnknownCommand(t *testing.T) {
	t.Parallel()
	_, stderr, code := egressd(t, "frobnicate")
	if code != 2 || !strings.Contains(stderr, `egressd: unknown command "frobnicate"`) {
		t.Fatalf("exit %d, stderr %q; want 2 and the command named", code, stderr)
	}
}

// freeAddr returns a loopback address nothing listens on right now. The
// binary needs fixed ports in its config; the window in which another
// process could take the port is small.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startEcho runs a loopback echo server for tunnels.
func startEcho(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(30 * time.Second))
				io.Copy(c, c)
				c.(*net.TCPConn).CloseWrite()
			})
		}
	})
	return ln.Addr().String()
}

// server is a running `egressd serve`.
type server struct {
	cmd            *exec.Cmd
	proxy, admin   string
	stdout, stderr *lockedbuf.Buffer
	exited         chan error
}

func startServer(t *testing.T, drainDelay string) *server {
	t.Helper()
	s := newServer(t)
	startWithConfig(t, writeConfig(t, drainConfig(s.proxy, s.admin, drainDelay)), s)
	return s
}

// readyz returns the admin port's /readyz status, 0 when it is not up.
func (s *server) readyz(t *testing.T) int {
	t.Helper()
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}
	resp, err := client.Get("http://" + s.admin + "/readyz")
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

func (s *server) waitExit(t *testing.T, bound time.Duration) int {
	t.Helper()
	select {
	case err := <-s.exited:
		s.exited <- err
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode()
		}
		if err != nil {
			t.Fatalf("wait: %v", err)
		}
		return 0
	case <-time.After(bound):
		t.Fatalf("egressd still running after %s", bound)
		return -1
	}
}

func waitFor(t *testing.T, bound time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(bound)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", bound, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// openTunnel CONNECTs through the proxy to target.
func openTunnel(t *testing.T, proxyAddr, target string) (*net.TCPConn, *bufio.Reader) {
	t.Helper()
	c, err := net.DialTimeout("tcp", proxyAddr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial proxy: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(30 * time.Second))
	fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", target, target)
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, &http.Request{Method: "CONNECT"})
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("CONNECT %s: %v %v", target, resp, err)
	}
	return c.(*net.TCPConn), br
}

func echoOnce(t *testing.T, c net.Conn, br *bufio.Reader, msg string) {
	t.Helper()
	if _, err := io.WriteString(c, msg); err != nil {
		t.Fatalf("write: %v", err)
	}
	buf := make([]byte, len(msg))
	if _, err := io.ReadFull(br, buf); err != nil || string(buf) != msg {
		t.Fatalf("echo %q, %v; want %q", buf, err, msg)
	}
}

// TestServeDrainsOnSIGTERM is the rollout path: SIGTERM fails readiness
// at once, keeps accepting for drain_delay so the load balancer can
// notice, then stops new connections, lets the open tunnel finish, logs
// it, and the process exits 0.
func TestServeDrainsOnSIGTERM(t *testing.T) {
	t.Parallel()
	const delay = 1500 * time.Millisecond
	echo := startEcho(t)
	s := startServer(t, delay.String())
	c, br := openTunnel(t, s.proxy, echo)
	echoOnce(t, c, br, "before SIGTERM")

	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	signalled := time.Now()
	waitFor(t, 5*time.Second, "/readyz to turn 503", func() bool { return s.readyz(t) == http.StatusServiceUnavailable })
	if time.Since(signalled) < delay/2 {
		// Still inside drain_delay: a late client is served, not refused.
		late, lateBR := openTunnel(t, s.proxy, echo)
		echoOnce(t, late, lateBR, "late but welcome")
		late.Close()
	} else {
		t.Log("machine too slow to check the drain_delay window; skipped that step")
	}
	waitFor(t, delay+5*time.Second, "the proxy port to refuse connections", func() bool {
		nc, err := net.DialTimeout("tcp", s.proxy, time.Second)
		if err == nil {
			nc.Close()
		}
		return errors.Is(err, syscall.ECONNREFUSED)
	})
	if el := time.Since(signalled); el < delay {
		t.Errorf("proxy port refused connections %s after SIGTERM, before drain_delay %s", el, delay)
	}
	select {
	case err := <-s.exited:
		t.Fatalf("egressd exited (%v) with a tunnel open and the drain deadline 10s away", err)
	default:
	}
	echoOnce(t, c, br, "during drain")
	c.CloseWrite()
	if rest, err := io.ReadAll(br); err != nil || len(rest) > 0 {
		t.Fatalf("tunnel end: %q, %v; want a clean EOF", rest, err)
	}
	c.Close()
	if code := s.waitExit(t, 8*time.Second); code != 0 {
		t.Fatalf("exit code %d after a clean drain, want 0\nstderr: %s", code, s.stderr)
	}

	var tunnel map[string]any
	for _, line := range strings.Split(strings.TrimSpace(s.stdout.String()), "\n") {
		var e map[string]any
		if json.Unmarshal([]byte(line), &e) == nil && e["kind"] == "connect" {
			tunnel = e
		}
	}
	want := float64(len("before SIGTERM") + len("during drain"))
	if tunnel == nil || tunnel["tenant"] != "demo" || tunnel["status"] != float64(200) || tunnel["bytes_up"] != want {
		t.Errorf("access log tunnel line %v, want tenant demo, status 200, bytes_up %v\nstdout: %s", tunnel, want, s.stdout)
	}
	for _, msg := range []string{`"msg":"failing probes before closing the listener"`, `"msg":"draining"`, `"msg":"stopped"`} {
		if !strings.Contains(s.stderr.String(), msg) {
			t.Errorf("stderr lacks %s:\n%s", msg, s.stderr)
		}
	}
}

// TestServeSecondSignalExitsAtOnce: an operator's second Ctrl-C must not
// wait out the drain deadline.
func TestServeSecondSignalExitsAtOnce(t *testing.T) {
	t.Parallel()
	echo := startEcho(t)
	s := startServer(t, "0s")
	c, br := openTunnel(t, s.proxy, echo)
	echoOnce(t, c, br, "hold the drain open")
	s.cmd.Process.Signal(syscall.SIGTERM)
	waitFor(t, 5*time.Second, "/readyz to turn 503", func() bool { return s.readyz(t) == http.StatusServiceUnavailable })
	s.cmd.Process.Signal(syscall.SIGINT)
	if code := s.waitExit(t, 5*time.Second); code != 1 {
		t.Fatalf("exit code %d, want 1 for an interrupted drain", code)
	}
	if !strings.Contains(s.stderr.String(), "second signal (interrupt) during drain") {
		t.Errorf("stderr does not explain the exit:\n%s", s.stderr)
	}
}
