package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestExplainReadsEverySpellingAsTheProxyDoes: explain builds its target
// with the proxy's own parser, so for every spelling of a method, host and
// path, explain's decision is what the running proxy does with the same
// request, including refusing what has no single reading.
func TestExplainReadsEverySpellingAsTheProxyDoes(t *testing.T) {
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	t.Cleanup(origin.Close)
	_, port, _ := net.SplitHostPort(origin.Listener.Addr().String())
	s := newServer(t)
	path := writeConfig(t, reloadConfig(s.proxy, s.admin, `    rules:
      - name: no-admin
        action: deny
        cidrs: ["127.0.0.0/8"]
        paths: ["/admin"]
      - name: no-post
        action: deny
        cidrs: ["127.0.0.0/8"]
        methods: [POST]
      - name: loopback-origins
        cidrs: ["127.0.0.0/8"]
`))
	startWithConfig(t, path, s)
	for _, tc := range []struct {
		method, path string
		want         string // explain's decision, or "refused" for a 400
	}{
		{"GET", "/admin", "deny"},
		{"GET", "/%61dmin", "deny"},
		{"GET", "/x/../admin", "deny"},
		{"GET", "/.//admin/", "deny"},
		{"GET", "/%41dmin", "allow"},
		{"post", "/x", "deny"},
		{"get", "/x", "allow"},
		{"GET", "/a%2Fdmin", "refused"},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			url := "http://127.0.0.1:" + port + tc.path
			out, stderr, code := egressd(t, "explain", "-config", path, "--link-id", "1001", "-method", tc.method, url)
			decision := "refused"
			if code == 0 {
				for _, line := range strings.Split(out, "\n") {
					if v, ok := strings.CutPrefix(line, "decision:"); ok {
						decision = strings.Fields(v)[0]
					}
				}
			}
			if decision != tc.want {
				t.Fatalf("explain decided %q (exit %d), want %q:\n%s%s", decision, code, tc.want, out, stderr)
			}
			status := rawStatus(t, s.proxy, tc.method+" "+url+" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
			proxied := map[int]string{200: "allow", 403: "deny", 400: "refused"}[status]
			if proxied != decision {
				t.Fatalf("explain decided %q, the proxy answered %d", decision, status)
			}
		})
	}
}

// rawStatus sends one raw request to the proxy and returns the status.
func rawStatus(t *testing.T, proxyAddr, raw string) int {
	t.Helper()
	c, err := net.DialTimeout("tcp", proxyAddr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial proxy: %v", err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprint(c, raw)
	resp, err := http.ReadResponse(bufio.NewReader(c), &http.Request{Method: "GET"})
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}
