package proxy_test

import (
	"bufio"
	"io"
	"net"
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
	t.Logf("access log: status=%v error=%v", e["status"], e["error"])
	if len(got) == 0 {
		t.Fatalf("client got no response at all, want 502 upstream")
	}
}
