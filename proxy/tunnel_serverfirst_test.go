package proxy_test

import (
	"io"
	"net"
	"testing"
	"time"
)

// A server-speaks-first protocol (SSH, SMTP) through CONNECT with the
// default policy: the banner should arrive promptly.
func TestServerFirstBannerIsPrompt(t *testing.T) {
	banner := startTCPServer(t, func(c *net.TCPConn) {
		io.WriteString(c, "SSH-2.0-test\r\n")
		io.Copy(io.Discard, c)
	})
	p := startProxy(t)
	c, br := connectVia(t, p, banner)
	_ = c
	start := time.Now()
	line, err := br.ReadString('\n')
	if el := time.Since(start); err != nil || el > time.Second {
		t.Fatalf("banner %q after %s (%v), want it within 1s", line, el, err)
	}
}
