package proxy_test

import (
	"io"
	"testing"
	"time"

	proxyproto "github.com/pires/go-proxyproto"
)

// An address-less v2 header (PROXY command, AF_UNSPEC) is what CONTEXT.md
// says Azure LB probes may send; the issue says it must get a probe answer.
func TestAddressLessProbe(t *testing.T) {
	p := startProxy(t, withConfig(requiredPP))
	h := headerBytes(t, &proxyproto.Header{Version: 2, Command: proxyproto.PROXY, TransportProtocol: proxyproto.UNSPEC})
	c := dial(t, p.addr)
	c.Write(append(h, "GET / HTTP/1.1\r\nHost: 10.2.128.100\r\n\r\n"...))
	c.SetReadDeadline(time.Now().Add(3 * time.Second))
	got, _ := io.ReadAll(c)
	want := "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
	if string(got) != want {
		for _, e := range p.events.All() {
			t.Logf("event: %s %v", e.Message, e.ContextMap())
		}
		t.Fatalf("reply %q, want %q", got, want)
	}
}
