package proxy_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	proxyproto "github.com/pires/go-proxyproto"
	"go.uber.org/goleak"

	"github.com/egressd/egressd/proxy"
)

// startShutdown runs Shutdown with the given deadline on its own
// goroutine and returns a channel with its result.
func startShutdown(p *testProxy, deadline time.Duration) <-chan error {
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), deadline)
		defer cancel()
		done <- p.srv.Shutdown(ctx)
	}()
	return done
}

// expectRefused waits until a new connection to addr is refused.
func expectRefused(t *testing.T, addr string) {
	t.Helper()
	waitFor(t, 3*time.Second, "new connections to be refused", func() bool {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return false
		}
		if !errors.Is(err, syscall.ECONNREFUSED) {
			t.Fatalf("dial during drain: %v, want connection refused", err)
		}
		return true
	})
}

// TestDrainLetsTunnelsFinish: once a drain starts, readiness fails and the
// listener refuses new connections, but open tunnels keep working until
// their clients finish, and then Shutdown returns nil before its deadline.
func TestDrainLetsTunnelsFinish(t *testing.T) {
	t.Parallel()
	echo := startEcho(t)
	p := startProxy(t)
	type tun struct {
		c  *net.TCPConn
		br *bufio.Reader
	}
	var tuns []tun
	for range 3 {
		c, br := connectVia(t, p, echo)
		echoOnce(t, c, br, "before drain")
		tuns = append(tuns, tun{c, br})
	}
	if !p.srv.Ready() {
		t.Fatal("Ready() = false before the drain")
	}
	start := time.Now()
	done := startShutdown(p, 2*time.Second)
	waitFor(t, time.Second, "Ready() to turn false", func() bool { return !p.srv.Ready() })
	expectRefused(t, p.addr)

	for i, tu := range tuns {
		time.Sleep(100 * time.Millisecond) // the drain is under way, not over
		echoOnce(t, tu.c, tu.br, "during drain")
		tu.c.CloseWrite()
		if rest, err := io.ReadAll(tu.br); err != nil || len(rest) > 0 {
			t.Fatalf("tunnel %d: after half-close got %q, %v; want a clean EOF", i, rest, err)
		}
		tu.c.Close()
		select {
		case err := <-done:
			if i < len(tuns)-1 {
				t.Fatalf("Shutdown returned (%v) with %d tunnels still open", err, len(tuns)-1-i)
			}
			done = nil
		default:
		}
	}
	if done != nil {
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("Shutdown = %v, want nil: every tunnel finished in time", err)
			}
		case <-time.After(3 * time.Second):
			t.Fatal("Shutdown did not return after the last tunnel closed")
		}
	}
	if el := time.Since(start); el >= 2*time.Second {
		t.Errorf("Shutdown took %s, want it to return as soon as the tunnels finished", el)
	}
	waitFor(t, 3*time.Second, "three tunnel log lines", func() bool { return len(p.accessEntries()) == 3 })
	for _, e := range p.accessEntries() {
		want := int64(len("before drain") + len("during drain"))
		if e["status"] != int64(200) || e["bytes_up"] != want || e["bytes_down"] != want {
			t.Errorf("tunnel log status=%v up=%v down=%v, want 200 %d %d", e["status"], e["bytes_up"], e["bytes_down"], want, want)
		}
	}
}

// TestDrainCutsTunnelsAtDeadline: a tunnel that outlives the deadline is
// closed on both legs, Shutdown says so, and nothing is left running.
// Not parallel: it counts goroutines.
func TestDrainCutsTunnelsAtDeadline(t *testing.T) {
	upstreamDone := make(chan error, 1)
	upstream := startTCPServer(t, func(c *net.TCPConn) {
		_, err := io.Copy(c, c)
		upstreamDone <- err
	})
	baseG := goleak.IgnoreCurrent()
	p := startProxy(t)
	c, br := connectVia(t, p, upstream)
	echoOnce(t, c, br, "long-lived")

	start := time.Now()
	err := <-startShutdown(p, 300*time.Millisecond)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown = %v, want context.DeadlineExceeded", err)
	}
	if el := time.Since(start); el < 250*time.Millisecond || el > 3*time.Second {
		t.Errorf("Shutdown returned after %s, want about the 300ms deadline", el)
	}
	c.SetReadDeadline(time.Now().Add(3 * time.Second))
	if n, err := br.Read(make([]byte, 1)); n > 0 || err == nil || isTimeout(err) {
		t.Fatalf("client read after the cut: n=%d err=%v, want EOF or reset", n, err)
	}
	select {
	case <-upstreamDone:
	case <-time.After(3 * time.Second):
		t.Fatal("upstream leg still open after the drain deadline")
	}
	waitFor(t, 3*time.Second, "the cut tunnel's log line", func() bool { return len(p.accessEntries()) == 1 })
	if e := p.accessEntries()[0]; e["kind"] != "connect" || e["bytes_up"] != int64(len("long-lived")) {
		t.Errorf("tunnel log kind=%v bytes_up=%v, want connect %d", e["kind"], e["bytes_up"], len("long-lived"))
	}
	if n := p.events.FilterMessage("drain deadline reached; closed remaining connections").Len(); n != 1 {
		t.Errorf("%d drain-deadline warnings, want 1", n)
	}
	if err := goleak.Find(baseG); err != nil {
		t.Fatalf("after Shutdown: %v", err)
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// TestDrainFinishesRequestsAndClosesIdle: a request in flight completes
// (with Connection: close), an idle keep-alive connection is closed at
// once, and a drained server does not serve again.
func TestDrainFinishesRequestsAndClosesIdle(t *testing.T) {
	t.Parallel()
	inHandler := make(chan struct{})
	release := make(chan struct{})
	o := startHTTPOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			close(inHandler)
			select {
			case <-release:
			case <-time.After(ioTimeout):
			}
		}
		io.WriteString(w, "done")
	}))
	host := strings.TrimPrefix(o, "http://")
	p := startProxy(t)

	idle := dial(t, p.addr)
	idleBR := bufio.NewReader(idle)
	resp, _ := exchange(t, idle, idleBR, "GET http://"+host+"/fast HTTP/1.1\r\nHost: "+host+"\r\n\r\n", "GET")
	if resp.StatusCode != 200 || resp.Close {
		t.Fatalf("warm-up request: %d close=%v", resp.StatusCode, resp.Close)
	}

	busy := dial(t, p.addr)
	busyBR := bufio.NewReader(busy)
	io.WriteString(busy, "GET http://"+host+"/slow HTTP/1.1\r\nHost: "+host+"\r\n\r\n")
	<-inHandler

	done := startShutdown(p, 5*time.Second)
	expectEOF(t, idle, idleBR)
	select {
	case err := <-done:
		t.Fatalf("Shutdown returned (%v) with a request in flight", err)
	case <-time.After(100 * time.Millisecond):
	}
	close(release)
	resp, body := readResponse(t, busyBR, "GET")
	if resp.StatusCode != 200 || string(body) != "done" {
		t.Fatalf("in-flight request: %d %q, want 200 done", resp.StatusCode, body)
	}
	if !resp.Close {
		t.Errorf("response during a drain lacks Connection: close")
	}
	expectEOF(t, busy, busyBR)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Shutdown = %v, want nil", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Shutdown did not return after the last request")
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := p.srv.Serve(ln); !errors.Is(err, proxy.ErrServerClosed) {
		t.Errorf("Serve after Shutdown = %v, want ErrServerClosed", err)
	}
	if _, err := net.DialTimeout("tcp", ln.Addr().String(), time.Second); err == nil {
		t.Errorf("Serve after Shutdown left its listener open")
	}
}

// TestBeginDrainFailsProbesButServes: the first drain step takes the pod
// out of the load balancer (probes answer 503) while tenant traffic that
// still arrives is served, because the balancer needs a few probe periods
// to notice.
func TestBeginDrainFailsProbesButServes(t *testing.T) {
	t.Parallel()
	o := okOrigin(t)
	p := startProxy(t, withConfig(requiredPP))
	probe := func() string {
		c := dial(t, p.addr)
		c.Write(append(headerBytes(t, &proxyproto.Header{Version: 2, Command: proxyproto.LOCAL, TransportProtocol: proxyproto.UNSPEC}),
			"GET / HTTP/1.1\r\nHost: 10.2.128.100\r\n\r\n"...))
		got, err := io.ReadAll(c)
		if err != nil {
			t.Fatalf("probe: %v", err)
		}
		return strings.SplitN(string(got), "\r\n", 2)[0]
	}
	if got := probe(); got != "HTTP/1.1 200 OK" {
		t.Fatalf("probe before the drain: %q, want 200", got)
	}
	p.srv.BeginDrain()
	if p.srv.Ready() {
		t.Error("Ready() = true after BeginDrain")
	}
	if got := probe(); got != "HTTP/1.1 503 Service Unavailable" {
		t.Errorf("probe after BeginDrain: %q, want 503", got)
	}
	assertServes(t, p, o, demoLinkID)
	if err := p.shutdown(t); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	expectRefused(t, p.addr)
}
