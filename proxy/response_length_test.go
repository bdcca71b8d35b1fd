package proxy_test

import (
	"bufio"
	"io"
	"net"
	"strings"
	"testing"
)

// An origin response with conflicting Content-Length values is never
// relayed; the client must get a 502, and the access log must not say 200.
func TestConflictingUpstreamContentLength(t *testing.T) {
	o := startRawOrigin(t, func(c net.Conn, _ *bufio.Reader, _ string) bool {
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!")
		return false
	})
	p := startProxy(t)
	c := dial(t, p.addr)
	br := bufio.NewReader(c)
	io.WriteString(c, "GET http://"+o.addr+"/ HTTP/1.1\r\nHost: "+o.addr+"\r\n\r\n")
	got, _ := io.ReadAll(br)
	e := p.waitAccess(t, "bad CL", func(map[string]any) bool { return true })
	if !strings.HasPrefix(string(got), "HTTP/1.1 502 ") || !strings.Contains(string(got), "X-Proxy-Error: upstream") {
		t.Fatalf("client got %q, want a 502 naming the upstream", got)
	}
	if strings.Contains(string(got), "hello") {
		t.Fatalf("the unframeable body leaked to the client: %q", got)
	}
	if e["status"] != int64(502) || e["error"] != "upstream" {
		t.Fatalf("access log status=%v error=%v, want 502 upstream", e["status"], e["error"])
	}
}
