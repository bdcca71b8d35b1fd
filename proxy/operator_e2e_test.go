package proxy_test

import (
	"bufio"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zapcore"

	"github.com/egressd/egressd/acl"
	"github.com/egressd/egressd/internal/lockedbuf"
)

// TestEveryResponseCarriesRequestID: a relayed 200, a CONNECT's 200 and a
// proxy refusal all carry X-Request-Id, and it is the access log's
// request_id. An origin's own X-Request-Id is kept; egressd's comes last.
func TestEveryResponseCarriesRequestID(t *testing.T) {
	t.Parallel()
	o := startHTTPOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/own-id" {
			w.Header().Set("X-Request-Id", "origin-7")
		}
		io.WriteString(w, "ok")
	}))
	p := startProxy(t)
	echo := startEcho(t)
	host := strings.TrimPrefix(o, "http://")

	ids := map[string]string{} // request id -> what it answered
	check := func(what string, h http.Header, wantOrigin bool) {
		t.Helper()
		v := h.Values("X-Request-Id")
		if wantOrigin && (len(v) != 2 || v[0] != "origin-7") {
			t.Fatalf("%s: X-Request-Id %q, want the origin's then egressd's", what, v)
		}
		if !wantOrigin && len(v) != 1 {
			t.Fatalf("%s: X-Request-Id %q, want one", what, v)
		}
		ids[v[len(v)-1]] = what
	}
	c := dial(t, p.addr)
	br := bufio.NewReader(c)
	resp, _ := exchange(t, c, br, "GET "+o+"/plain HTTP/1.1\r\nHost: "+host+"\r\n\r\n", "GET")
	check("200 from the origin", resp.Header, false)
	resp, _ = exchange(t, c, br, "GET "+o+"/own-id HTTP/1.1\r\nHost: "+host+"\r\n\r\n", "GET")
	check("200 with the origin's id", resp.Header, true)
	resp, _ = exchange(t, c, br, "GET http://denied.test/ HTTP/1.1\r\nHost: denied.test\r\n\r\n", "GET")
	if resp.StatusCode != 403 {
		t.Fatalf("denied.test: %d, want 403", resp.StatusCode)
	}
	check("403", resp.Header, false)
	c.Close()

	tc := dial(t, p.addr)
	defer tc.Close()
	tbr := bufio.NewReader(tc)
	fmt.Fprintf(tc, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", echo, echo)
	resp, err := http.ReadResponse(tbr, &http.Request{Method: "CONNECT"})
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("CONNECT: %v %v", resp, err)
	}
	check("200 Connection established", resp.Header, false)
	tc.Close()

	for id, what := range ids {
		p.waitAccess(t, what, func(e map[string]any) bool { return e["request_id"] == id })
	}
}

// TestRateLimitedRequestIsLoggedAsLimited: the policy allowed it, the
// tenant's budget refused it, and the log line says the latter.
func TestRateLimitedRequestIsLoggedAsLimited(t *testing.T) {
	t.Parallel()
	o := helloOrigin(t)
	p := startProxy(t, withACL(func(c *acl.Config) {
		c.Tenants[0].Limits = acl.LimitsConfig{Rate: 0.001, Burst: 1}
	}))
	if status, _ := getVia(t, p, o+"/first", 0); status != 200 {
		t.Fatalf("first request: %d, want 200", status)
	}
	if status, _ := getVia(t, p, o+"/second", 0); status != 429 {
		t.Fatalf("second request: %d, want 429", status)
	}
	e := p.waitAccess(t, "the 429", func(e map[string]any) bool { return e["status"] == int64(429) })
	if e["decision"] != "limited" || e["reason"] != "limit" || e["rule"] != "loopback-origins" {
		t.Fatalf("429 logged as decision=%v reason=%v rule=%v; want limited, limit, and the rule that allowed it", e["decision"], e["reason"], e["rule"])
	}
}

// TestRefusedProxyHeaderWarnsWithPeer: a connection closed at the PROXY
// header is a warning naming the socket peer, so a changed NAT subnet
// that turns every tenant away is visible at the default log level.
func TestRefusedProxyHeaderWarnsWithPeer(t *testing.T) {
	t.Parallel()
	p := startProxy(t, withConfig(requiredPP))
	c := dial(t, p.addr)
	local := c.LocalAddr().String()
	io.WriteString(c, "GET http://example.com/ HTTP/1.1\r\nHost: example.com\r\n\r\n")
	expectClosed(t, c, 5*time.Second)
	waitFor(t, 5*time.Second, "the refusal warning", func() bool {
		return p.events.FilterMessage("connection refused at PROXY header").Len() > 0
	})
	ev := p.events.FilterMessage("connection refused at PROXY header").All()[0]
	m := ev.ContextMap()
	if ev.Level != zapcore.WarnLevel || m["outcome"] != "missing" || m["peer"] != local {
		t.Fatalf("logged %v %v; want warn, outcome missing, peer %s", ev.Level, m, local)
	}
}

// TestSquidLineCannotBeForged: a user name carrying a newline and a whole
// fake log line stays inside one escaped field of one line, and the
// squid_extended fields name the tenant for a SIEM.
func TestSquidLineCannotBeForged(t *testing.T) {
	t.Parallel()
	o := helloOrigin(t)
	var buf lockedbuf.Buffer
	p := startProxy(t, withAccessFormat("squid_extended", &buf))
	forged := "mallory\n1700000000.000      0 10.9.9.9 TCP_MISS/200 0 GET http://forged.test/ - HIER_NONE/- -"
	cred := base64.StdEncoding.EncodeToString([]byte(forged + ":x"))
	host := strings.TrimPrefix(o, "http://")
	c := dial(t, p.addr)
	defer c.Close()
	resp, _ := exchange(t, c, bufio.NewReader(c), "GET "+o+"/x HTTP/1.1\r\nHost: "+host+"\r\nProxy-Authorization: Basic "+cred+"\r\nConnection: close\r\n\r\n", "GET")
	waitFor(t, 5*time.Second, "a squid line", func() bool { return strings.HasSuffix(buf.String(), "\n") })
	time.Sleep(50 * time.Millisecond)
	out := buf.String()
	if strings.Count(out, "\n") != 1 || strings.Contains(out, "\nforged") || strings.Contains(out, "\n1700000000") {
		t.Fatalf("one request wrote %q; want exactly one line", out)
	}
	f := strings.Fields(out)
	if len(f) != 16 {
		t.Fatalf("%d fields in %q, want Squid's 10 and 6 extended", len(f), out)
	}
	if user := f[7]; user != "-" && !strings.HasPrefix(user, "mallory%0A1700000000.000%20") {
		t.Errorf("user field %q: neither unlogged nor escaped", user)
	}
	want := []string{"tenant=demo", "link_id=-", "decision=allow", "rule=loopback-origins", "request_id=" + resp.Header.Get("X-Request-Id")}
	got := strings.Join(f[10:], " ")
	for _, w := range want {
		if !strings.Contains(got, w) {
			t.Errorf("extended fields %q lack %q", got, w)
		}
	}
}
