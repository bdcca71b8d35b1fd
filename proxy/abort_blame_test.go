package proxy_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// A response cut after its head went out cannot change its status any
// more, but the log and the counters must say it failed, and on whose side.
func TestTruncatedResponseIsAFailure(t *testing.T) {
	reg := prometheus.NewRegistry()
	origin := startTCPServer(t, func(c *net.TCPConn) {
		readRawHead(bufio.NewReader(c))
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 40000\r\n\r\npartial")
		c.SetLinger(0)
	})
	p := startProxy(t, withMetrics(reg))
	c := dial(t, p.addr)
	fmt.Fprintf(c, "GET http://%s/ HTTP/1.1\r\nHost: %s\r\n\r\n", origin, origin)
	resp, _ := http.ReadResponse(bufio.NewReader(c), nil)
	_, err := io.ReadAll(resp.Body)
	t.Logf("client: %d, body read error %v", resp.StatusCode, err)
	e := p.waitKind(t, "", "127.0.0.1", "")
	if e["error"] != "upstream_body" {
		t.Errorf("access log error = %v, want upstream_body (status=%v bytes_down=%v)", e["error"], e["status"], e["bytes_down"])
	}
	if v := metricValue(t, reg, "egressd_requests_total", map[string]string{"decision": "allow", "status_class": "2xx"}); v != 0 {
		t.Errorf("truncated response counted as decision=allow 2xx (%v), want it counted as a failure", v)
	}
}

// A client that aborts its upload is not an upstream failure: no 502 is
// logged, and the upstream error rate operators alert on is untouched.
func TestClientAbortIsNotBlamedOnUpstream(t *testing.T) {
	reg := prometheus.NewRegistry()
	seen := make(chan struct{}, 1)
	origin := startTCPServer(t, func(c *net.TCPConn) {
		br := bufio.NewReader(c)
		readRawHead(br)
		seen <- struct{}{}
		io.Copy(io.Discard, br)
	})
	p := startProxy(t, withMetrics(reg))
	c := dial(t, p.addr)
	fmt.Fprintf(c, "POST http://%s/ HTTP/1.1\r\nHost: %s\r\nContent-Length: 100000\r\n\r\nabc", origin, origin)
	<-seen
	c.Close()
	e := p.waitKind(t, "", "127.0.0.1", "")
	if e["error"] != "client_aborted" || e["status"] == int64(502) {
		t.Errorf("client abort logged as status=%v error=%v, want error client_aborted", e["status"], e["error"])
	}
	time.Sleep(50 * time.Millisecond)
	if v := metricValue(t, reg, "egressd_requests_total", map[string]string{"decision": "error", "status_class": "5xx"}); v != 0 {
		t.Errorf("client abort counted as decision=error 5xx (%v)", v)
	}
}
