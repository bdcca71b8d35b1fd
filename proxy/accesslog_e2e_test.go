package proxy_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/egressd/egressd/acl"
	"github.com/egressd/egressd/internal/lockedbuf"
)

// TestSquidLogCodesForRefusalsAndFailures: in the Squid format a request
// refused by the tenant's limit is TCP_DENIED (it read TCP_MISS/429), and a
// CONNECT whose dial failed is TCP_TUNNEL_ABORTED (it read TCP_TUNNEL/502,
// as if a tunnel had been served).
func TestSquidLogCodesForRefusalsAndFailures(t *testing.T) {
	t.Parallel()
	o := helloOrigin(t)
	var buf lockedbuf.Buffer
	p := startProxy(t, withAccessFormat("squid", &buf), withACL(func(c *acl.Config) {
		// One token, refilled every 1000 s: the second request is over.
		c.Tenants[0].Limits = acl.LimitsConfig{Rate: 0.001, Burst: 1}
	}))
	lines := func() []string { return strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n") }
	codeOf := func(line string) string {
		if f := strings.Fields(line); len(f) == 10 {
			return f[3]
		}
		return "(not a squid line: " + line + ")"
	}

	// The one token goes to a CONNECT to a port nothing listens on.
	c := dial(t, p.addr)
	target := freePort(t)
	fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", target, target)
	resp, err := http.ReadResponse(bufio.NewReader(c), &http.Request{Method: "CONNECT"})
	c.Close()
	if err != nil || resp.StatusCode != http.StatusBadGateway {
		t.Fatalf("CONNECT to a closed port: %v %v, want 502", resp, err)
	}
	waitFor(t, 3*time.Second, "the CONNECT's squid line", func() bool { return strings.HasSuffix(buf.String(), "\n") })
	if got := codeOf(lines()[0]); got != "TCP_TUNNEL_ABORTED/502" {
		t.Errorf("failed CONNECT logged %q, want TCP_TUNNEL_ABORTED/502", got)
	}

	if status, _ := getVia(t, p, o+"/over", 0); status != http.StatusTooManyRequests {
		t.Fatalf("request over the limit: status %d, want 429", status)
	}
	waitFor(t, 3*time.Second, "the refused request's squid line", func() bool { return len(lines()) == 2 })
	if got := codeOf(lines()[1]); got != "TCP_DENIED/429" {
		t.Errorf("request over the limit logged %q, want TCP_DENIED/429", got)
	}
}

// TestSquidAccessLog: log.format squid writes Squid's native line so
// existing SIEM parsers keep working.
func TestSquidAccessLog(t *testing.T) {
	t.Parallel()
	o := helloOrigin(t)
	var buf lockedbuf.Buffer
	p := startProxy(t, withAccessFormat("squid", &buf))
	host := strings.TrimPrefix(o, "http://")
	c := dial(t, p.addr)
	defer c.Close()
	fmt.Fprintf(c, "GET %s/squid HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", o, host)
	raw, err := io.ReadAll(c)
	if err != nil || !bytes.HasPrefix(raw, []byte("HTTP/1.1 200 ")) || !bytes.HasSuffix(raw, []byte("\r\n\r\nhello")) {
		t.Fatalf("response %q, %v", raw, err)
	}
	waitFor(t, 3*time.Second, "a squid log line", func() bool { return strings.HasSuffix(buf.String(), "\n") })
	// time.ms elapsed client code/status bytes method URL user hierarchy/peer type.
	// Bytes are what the client received, head included, as Squid counts;
	// the type is the response's media type.
	f := strings.Fields(buf.String())
	want := []string{"127.0.0.1", "TCP_MISS/200", strconv.Itoa(len(raw)), "GET", o + "/squid", "-", "HIER_DIRECT/127.0.0.1", "text/plain"}
	if len(f) != 10 || strings.Join(f[2:], " ") != strings.Join(want, " ") {
		t.Fatalf("squid line %q, want fields 3-10 %q (origin %s)", buf.String(), want, host)
	}
	if _, err := strconv.ParseFloat(f[0], 64); err != nil {
		t.Errorf("first field %q is not a Unix time with milliseconds", f[0])
	}
}
