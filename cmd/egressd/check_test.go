package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestCheckReportsEveryErrorAtOnce: an unknown key (with the key meant
// and no Go type name), a duration given as a number, a validation error
// and every unreadable file, each with its line, in one run.
func TestCheckReportsEveryErrorAtOnce(t *testing.T) {
	t.Parallel()
	path := writeConfig(t, `proxy:
  listn: ":3128"
  proxy_protocol: "off"
  drain_delay: 10
  tcp_keepalive: 300s
tls_inspection:
  ca_cert: /nonexistent/ca.crt
  ca_key: /nonexistent/ca.key
tenants:
  - name: a
    source_cidrs: [10.0.0.0/8]
    users: [{name: ci, password_file: /nonexistent/pw}]
    tls_inspection: {mode: bump}
`)
	_, stderr, code := egressd(t, "check", "-config", path)
	if code != 1 {
		t.Fatalf("exit %d, want 1\n%s", code, stderr)
	}
	for _, want := range []string{
		path + ":2: proxy.listn: unknown key (did you mean listen?)",
		path + `:4: proxy.drain_delay: 10: a duration needs a unit; use "10s"`,
		path + ":5: proxy.tcp_keepalive: 5m0s: must be well under the Private Link idle cutoff",
		path + ":12: tenants[0].users[0].password_file: read: open /nonexistent/pw: no such file or directory",
		path + ":7: tls_inspection.ca_cert: open /nonexistent/ca.crt: no such file or directory",
		path + ":8: tls_inspection.ca_key: open /nonexistent/ca.key: no such file or directory",
	} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
	if strings.Contains(stderr, "not found in type") || strings.Contains(stderr, "time.Duration") {
		t.Errorf("stderr names Go types:\n%s", stderr)
	}
}

// TestCheckWarnsOnShadowedRuleAndSummarises: a deny after an allow that
// covers it is a warning with its line (exit 0, exit 1 under -strict);
// the summary line carries the config hash serve logs and names the
// report-only and inspected tenants.
func TestCheckWarnsOnShadowedRuleAndSummarises(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if _, stderr, code := egressd(t, "ca", "init", "--out", dir); code != 0 {
		t.Fatalf("ca init: exit %d: %s", code, stderr)
	}
	pw := filepath.Join(dir, "pw")
	if err := os.WriteFile(pw, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	text := `proxy: {proxy_protocol: "off"}
tls_inspection:
  ca_cert: ` + filepath.Join(dir, "ca.crt") + `
  ca_key: ` + filepath.Join(dir, "ca.key") + `
tenants:
  - name: team-a
    source_cidrs: [10.1.0.0/16]
    rules:
      - name: github
        domains: [.github.com]
        ports: ["443"]
      - name: no-gist-posts
        action: deny
        domains: [gist.github.com]
        methods: [POST]
        ports: ["443"]
  - name: team-b
    source_cidrs: [10.2.0.0/16]
    report_only: true
    users: [{name: ci, password_file: ` + pw + `}]
    tls_inspection: {mode: bump}
    rules:
      - {name: partner, domains: [api.partner.example]}
`
	path := writeConfig(t, text)
	stdout, stderr, code := egressd(t, "check", "-config", path)
	if code != 0 {
		t.Fatalf("exit %d, want 0 for warnings only\nstdout: %s\nstderr: %s", code, stdout, stderr)
	}
	wantWarn := "warning: " + path + ":12: tenants[0].rules[1]: rule tenants[0].rules[1] (no-gist-posts) can never match in tenant team-a: allow tenants[0].rules[0] (github) covers it"
	if !strings.Contains(stderr, wantWarn) {
		t.Errorf("stderr lacks %q:\n%s", wantWarn, stderr)
	}
	wantSummary := path + ": OK config_hash=" + hash([]byte(text)) + " tenants=2 report_only=team-b inspected=team-b warnings=1\n"
	if !strings.HasPrefix(stdout, wantSummary) {
		t.Errorf("summary line:\n%s\nwant:\n%s", stdout, wantSummary)
	}

	if _, stderr, code := egressd(t, "check", "-strict", "-config", path); code != 1 || !strings.Contains(stderr, "1 warning(s) and -strict") {
		t.Errorf("-strict: exit %d, stderr %q; want 1", code, stderr)
	}
}

// TestCheckHashIsTheOneServeLogs: the summary's config_hash is the
// config_hash of serve's "egressd started" line for the same file, so a
// reviewer can tell which config a pod runs.
func TestCheckHashIsTheOneServeLogs(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	path := writeConfig(t, validConfig(s.proxy, s.admin))
	startWithConfig(t, path, s)
	var logged string
	waitFor(t, 10*time.Second, "the started line", func() bool {
		for _, l := range strings.Split(s.stderr.String(), "\n") {
			var e map[string]any
			if json.Unmarshal([]byte(l), &e) == nil && e["msg"] == "egressd started" {
				logged, _ = e["config_hash"].(string)
				return true
			}
		}
		return false
	})
	stdout, stderr, code := egressd(t, "check", "-config", path)
	if code != 0 || logged == "" || !strings.Contains(stdout, " config_hash="+logged+" ") {
		t.Fatalf("check exit %d, stdout %q, stderr %q; want config_hash=%s as serve logged", code, stdout, stderr, logged)
	}
}
