package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestReplayOfRealAccessLog records real traffic in egressd's own access
// log, then replays it under a stricter candidate config: the report must
// list exactly the request the new rule would refuse.
func TestReplayOfRealAccessLog(t *testing.T) {
	s := newServer(t)
	logPath := filepath.Join(t.TempDir(), "access.log")
	cfg := strings.Replace(validConfig(s.proxy, s.admin), "log:\n", "log:\n  output: "+logPath+"\n", 1)
	startWithConfig(t, writeConfig(t, cfg), s)
	echo := startEcho(t)
	c, br := openTunnel(t, s.proxy, echo)
	echoOnce(t, c, br, "x")
	c.Close()
	getStatus(t, s.proxy, "127.0.0.1:9")
	waitFor(t, 10*time.Second, "two access log lines", func() bool {
		b, _ := os.ReadFile(logPath)
		return strings.Count(string(b), `"msg":"access"`) >= 2
	})

	_, port, _ := strings.Cut(echo, ":")
	candidate := writeConfig(t, reloadConfig(s.proxy, s.admin, `    rules:
      - name: no-echo
        action: deny
        cidrs: ["127.0.0.0/8"]
        ports: ["`+port+`"]
      - name: loopback-origins
        cidrs: ["127.0.0.0/8"]
`))
	out, stderr, code := egressd(t, "replay", "-config", candidate, logPath)
	if code != 0 {
		t.Fatalf("replay exit %d: %s", code, stderr)
	}
	for _, want := range []string{"replayed 2 access entries: 1 changed", "allowed -> denied:", "tenant demo, rule no-echo: 1", "CONNECT https://" + echo} {
		if !strings.Contains(out, want) {
			t.Errorf("replay output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "denied -> allowed") {
		t.Errorf("nothing should become allowed:\n%s", out)
	}
}

// recordAccessLog serves two requests (an allowed tunnel to a loopback
// echo server, a GET to a closed loopback port) through a real egressd
// writing its access log in format, and returns the log, the candidate
// config that denies the echo port, and the unchanged config.
func recordAccessLog(t *testing.T, format string) (logText, stricter, same string) {
	t.Helper()
	s := newServer(t)
	logPath := filepath.Join(t.TempDir(), "access.log")
	cfg := strings.Replace(validConfig(s.proxy, s.admin), "log:\n", "log:\n  format: "+format+"\n  output: "+logPath+"\n", 1)
	same = writeConfig(t, cfg)
	startWithConfig(t, same, s)
	echo := startEcho(t)
	c, br := openTunnel(t, s.proxy, echo)
	echoOnce(t, c, br, "x")
	c.Close()
	getStatus(t, s.proxy, "127.0.0.1:9")
	waitFor(t, 10*time.Second, "two access log lines", func() bool {
		b, _ := os.ReadFile(logPath)
		return strings.Count(string(b), "\n") >= 2
	})
	b, _ := os.ReadFile(logPath)
	_, port, _ := strings.Cut(echo, ":")
	stricter = writeConfig(t, reloadConfig(s.proxy, s.admin, `    rules:
      - name: no-echo
        action: deny
        cidrs: ["127.0.0.0/8"]
        ports: ["`+port+`"]
      - name: loopback-origins
        cidrs: ["127.0.0.0/8"]
`))
	return string(b), stricter, same
}

// TestReplayFailOnChangeIsACIGate: the log comes on stdin (`-`), a changed
// decision exits 1 under -fail-on-change and names the count, an
// unchanged policy exits 0, and lines that are not access entries (event
// log lines, blank lines) are counted, not silently dropped.
func TestReplayFailOnChangeIsACIGate(t *testing.T) {
	t.Parallel()
	log, stricter, same := recordAccessLog(t, "json")
	in := log + "\n" + `{"level":"info","msg":"config reloaded"}` + "\nnot a log line\n"

	stdout, stderr, code := egressdStdin(t, in, "replay", "-fail-on-change", "-config", stricter, "-")
	if code != 1 || !strings.Contains(stderr, "decisions changed: 1 under "+stricter) {
		t.Errorf("changed decision: exit %d, stderr %q; want 1 and the count", code, stderr)
	}
	if !strings.Contains(stdout, "replayed 2 access entries: 1 changed") || !strings.Contains(stdout, "3 other lines skipped (not access entries)") {
		t.Errorf("stdout does not count every line:\n%s", stdout)
	}

	stdout, stderr, code = egressdStdin(t, in, "replay", "-fail-on-change", "-config", same, "-")
	if code != 0 || !strings.Contains(stdout, "replayed 2 access entries: 0 changed") {
		t.Errorf("same policy: exit %d, stdout %q, stderr %q; want 0 and 0 changed", code, stdout, stderr)
	}

	// Without -fail-on-change a change is a report, not a failure.
	if _, stderr, code = egressdStdin(t, in, "replay", "-config", stricter, "-"); code != 0 {
		t.Errorf("report mode: exit %d, stderr %q; want 0", code, stderr)
	}
}

// TestReplayReadsSquidExtendedLog: the squid_extended line egressd writes
// carries the tenant, so it replays like the JSON log.
func TestReplayReadsSquidExtendedLog(t *testing.T) {
	t.Parallel()
	log, stricter, _ := recordAccessLog(t, "squid_extended")
	stdout, stderr, code := egressdStdin(t, log, "replay", "-fail-on-change", "-config", stricter, "-")
	if code != 1 || !strings.Contains(stdout, "replayed 2 access entries: 1 changed") || !strings.Contains(stdout, "tenant demo, rule no-echo: 1") {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s\nwant exit 1 and one change by no-echo", code, stdout, stderr)
	}
}

// TestReplayRefusesNativeSquidLog: log.format squid has no tenant field;
// replay says so and how to fix it instead of "replayed 0".
func TestReplayRefusesNativeSquidLog(t *testing.T) {
	t.Parallel()
	log, stricter, _ := recordAccessLog(t, "squid")
	stdout, stderr, code := egressdStdin(t, log, "replay", "-config", stricter, "-")
	want := "line 1: acl: Squid-format line without tenant fields: log with log.format squid_extended (or json) to replay it"
	if code != 1 || !strings.Contains(stderr, want) || strings.Contains(stdout, "replayed 0") {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s\nwant exit 1 and %q", code, stdout, stderr, want)
	}
}
