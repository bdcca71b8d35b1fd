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
