package proxy_test

import (
	"bufio"
	"encoding/base64"
	"io"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"golang.org/x/crypto/bcrypt"

	"github.com/egressd/egressd/acl"
	"github.com/egressd/egressd/metrics"
	"github.com/egressd/egressd/proxy"
)

// TestMetricsAfterScriptedSession drives allowed, denied, authenticated,
// failed and tunnelled traffic from two LinkIDs (and one unknown) through a
// real proxy, then checks the per-tenant series and lints the exposition.
func TestMetricsAfterScriptedSession(t *testing.T) {
	hash, err := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	m := metrics.New(reg, metrics.BuildInfo{Version: "test"})
	m.SetTenants([]string{"alpha", "beta"})
	p := startProxy(t, withDeps(func(d *proxy.Deps) { d.Metrics = m }), withPolicy(acl.Config{Tenants: []acl.TenantConfig{
		{Name: "alpha", LinkIDs: []uint32{1001}, Rules: []acl.RuleConfig{{Name: "lo", CIDRs: []string{"127.0.0.0/8"}}}},
		{Name: "beta", LinkIDs: []uint32{1002}, RequireAuth: true,
			Users: []acl.UserConfig{{Name: "bob", BCrypt: string(hash)}},
			Rules: []acl.RuleConfig{{Name: "lo", CIDRs: []string{"127.0.0.0/8"}}}},
	}}))
	origin := strings.TrimPrefix(helloOrigin(t), "http://")
	echo := startEcho(t)
	refused := freePort(t) // nothing listens there

	send := func(linkID uint32, raw string) int {
		t.Helper()
		c := dialPP(t, p.addr, linkID)
		defer c.Close()
		resp, _ := exchange(t, c, bufio.NewReader(c), raw, "GET")
		return resp.StatusCode
	}
	get := func(linkID uint32, target, auth string) int {
		t.Helper()
		raw := "GET http://" + target + "/ HTTP/1.1\r\nHost: " + target + "\r\nConnection: close\r\n"
		if auth != "" {
			raw += "Proxy-Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte(auth)) + "\r\n"
		}
		return send(linkID, raw+"\r\n")
	}
	steps := []struct {
		name   string
		status int
		run    func() int
	}{
		{"alpha allowed", 200, func() int { return get(1001, origin, "") }},
		{"alpha allowed again", 200, func() int { return get(1001, origin, "") }},
		{"alpha denied", 403, func() int { return get(1001, "blocked.example.com", "") }},
		{"alpha dial refused", 502, func() int { return get(1001, refused, "") }},
		{"beta without credentials", 407, func() int { return get(1002, origin, "") }},
		{"beta wrong password", 407, func() int { return get(1002, origin, "bob:wrong") }},
		{"beta authenticated", 200, func() int { return get(1002, origin, "bob:s3cret") }},
		{"unknown link id", 403, func() int { return get(4242, origin, "") }},
	}
	for _, s := range steps {
		if got := s.run(); got != s.status {
			t.Fatalf("%s: status %d, want %d", s.name, got, s.status)
		}
	}

	// One tunnel from alpha: 5 bytes up, echoed 5 bytes down.
	c, br := connectAs(t, p, 1001, echo)
	io.WriteString(c, "hello")
	c.CloseWrite()
	if got, _ := io.ReadAll(br); string(got) != "hello" {
		t.Fatalf("echo = %q", got)
	}
	c.Close()
	p.waitAccess(t, "tunnel close", func(e map[string]any) bool { return e["kind"] == "connect" })

	tests := []struct {
		name   string
		metric string
		labels map[string]string
		want   float64
	}{
		{"alpha 2xx allowed", "egressd_requests_total", map[string]string{"tenant": "alpha", "decision": "allow", "status_class": "2xx", "method": "GET"}, 2},
		{"alpha denied", "egressd_requests_total", map[string]string{"tenant": "alpha", "decision": "deny"}, 1},
		{"alpha denial reason", "egressd_denials_total", map[string]string{"tenant": "alpha", "reason": "default"}, 1},
		{"alpha failed", "egressd_requests_total", map[string]string{"tenant": "alpha", "decision": "error", "status_class": "5xx"}, 1},
		{"alpha tunnel request", "egressd_requests_total", map[string]string{"tenant": "alpha", "method": "CONNECT", "decision": "allow"}, 1},
		{"alpha tunnels", "egressd_tunnels_total", map[string]string{"tenant": "alpha"}, 1},
		{"alpha open tunnels back to zero", "egressd_open_tunnels", map[string]string{"tenant": "alpha"}, 0},
		{"alpha tunnel bytes up", "egressd_transferred_bytes_total", map[string]string{"tenant": "alpha", "direction": "up"}, 5},
		{"alpha tunnel bytes down (plus two hello bodies)", "egressd_transferred_bytes_total", map[string]string{"tenant": "alpha", "direction": "down"}, 5 + 2*float64(len("hello"))},
		{"beta challenged", "egressd_requests_total", map[string]string{"tenant": "beta", "decision": "auth_required"}, 2},
		{"beta auth failure counted once", "egressd_auth_failures_total", map[string]string{"tenant": "beta"}, 1},
		{"beta allowed", "egressd_requests_total", map[string]string{"tenant": "beta", "decision": "allow"}, 1},
		{"unknown tenant denied", "egressd_denials_total", map[string]string{"tenant": "unknown", "reason": "no-tenant"}, 1},
		{"dial error", "egressd_upstream_dial_errors_total", map[string]string{"reason": "refused"}, 1},
		{"headers ok", "egressd_proxy_protocol_headers_total", map[string]string{"result": "ok"}, 9},
		{"no open connections left", "egressd_open_connections", nil, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			waitFor(t, ioTimeout, tc.name, func() bool { return metricValue(t, reg, tc.metric, tc.labels) == tc.want })
		})
	}
	if problems, err := testutil.GatherAndLint(reg); err != nil || len(problems) > 0 {
		t.Fatalf("lint: %v %v", err, problems)
	}
	// Tenant labels stay bounded: no series names a host or a LinkID.
	for _, l := range []string{"blocked.example.com", "4242", origin} {
		if n := metricValue(t, reg, "egressd_requests_total", map[string]string{"tenant": l}); n != 0 {
			t.Fatalf("a series is labelled with %q", l)
		}
	}
}
