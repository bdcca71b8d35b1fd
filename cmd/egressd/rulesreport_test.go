package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestRulesReportFromRealAccessLog runs the proxy binary, sends allowed
// and denied requests, then reads its access log back with
// `egressd rules-report`: hits per rule, never-hit and shadowed rules,
// the most denied destination, in the table and in JSON.
func TestRulesReportFromRealAccessLog(t *testing.T) {
	s := newServer(t)
	path := writeConfig(t, reloadConfig(s.proxy, s.admin, `    rules:
      - name: loopback-origins
        cidrs: ["127.0.0.0/8"]
      - name: loopback-narrow
        cidrs: ["127.0.0.0/16"]
        ports: ["80-9000"]
      - name: no-partner
        action: deny
        domains: [api.partner.test]
      - name: partner-all
        domains: [.partner.test]
      - name: partner-api
        domains: [api.partner.test]
`))
	startWithConfig(t, path, s)
	echo := startEcho(t)
	for range 3 {
		getStatus(t, s.proxy, echo)
	}
	for range 2 {
		if got := getStatus(t, s.proxy, "[::1]:81"); got != 403 {
			t.Fatalf("[::1]:81: %d, want 403", got)
		}
	}
	waitFor(t, 5*time.Second, "five access lines", func() bool { return strings.Count(s.stdout.String(), `"decision"`) >= 5 })
	logPath := filepath.Join(t.TempDir(), "access.log")
	if err := os.WriteFile(logPath, []byte(s.stdout.String()), 0o644); err != nil {
		t.Fatal(err)
	}

	out, stderr, code := egressd(t, "rules-report", "-config", path, logPath)
	if code != 0 {
		t.Fatalf("rules-report exit %d: %s", code, stderr)
	}
	for _, want := range []string{
		"5 access entries read",
		"tenant demo: 5 entries",
		"never hit: loopback-narrow, no-partner, partner-all, partner-api",
		"shadowed: loopback-narrow by earlier loopback-origins (redundant)",
		"shadowed: partner-api by earlier no-partner (overridden)",
		"2  [::1]:81",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	if !strings.Contains(out, "loopback-origins") || !containsRow(out, "loopback-origins", "allow", "3", "3", "0") || !containsRow(out, "default", "-", "2", "0", "2") {
		t.Errorf("rule rows wrong:\n%s", out)
	}

	jsonOut, stderr, code := egressd(t, "rules-report", "-json", "-config", path, logPath)
	if code != 0 {
		t.Fatalf("rules-report -json exit %d: %s", code, stderr)
	}
	var rep struct {
		Entries int `json:"entries"`
		Tenants []struct {
			Tenant    string   `json:"tenant"`
			NeverHit  []string `json:"never_hit"`
			TopDenied []struct {
				Destination string `json:"destination"`
				Count       int    `json:"count"`
			} `json:"top_denied"`
			Rules []struct {
				Rule  string `json:"rule"`
				Hits  int    `json:"hits"`
				Allow int    `json:"allow"`
			} `json:"rules"`
		} `json:"tenants"`
	}
	if err := json.Unmarshal([]byte(jsonOut), &rep); err != nil {
		t.Fatalf("JSON: %v\n%s", err, jsonOut)
	}
	if rep.Entries != 5 || len(rep.Tenants) != 1 || rep.Tenants[0].TopDenied[0].Destination != "[::1]:81" || rep.Tenants[0].TopDenied[0].Count != 2 {
		t.Fatalf("JSON report: %+v", rep)
	}
	if r := rep.Tenants[0].Rules[0]; r.Rule != "loopback-origins" || r.Hits != 3 || r.Allow != 3 {
		t.Fatalf("first rule: %+v", r)
	}

	if _, stderr, code := egressd(t, "rules-report", "-config", path); code != 2 || !strings.Contains(stderr, "give at least one access log") {
		t.Fatalf("no log: exit %d, %s", code, stderr)
	}
}

// containsRow reports whether some line starts with the rule name and
// carries the given columns in order.
func containsRow(table, rule string, cols ...string) bool {
	for _, line := range strings.Split(table, "\n") {
		f := strings.Fields(line)
		if len(f) >= len(cols)+1 && f[0] == rule && strings.Join(f[1:len(cols)+1], " ") == strings.Join(cols, " ") {
			return true
		}
	}
	return false
}
