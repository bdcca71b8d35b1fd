package main

import (
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestRotatedPasswordFileTakesEffect: a password file is a mounted Secret;
// when the kubelet swaps the Secret's ..data symlink to a new version, the
// running proxy reloads without any edit to its config: the old password
// stops working, the new one works, and the reload is logged and counted
// with cause referenced_file (issue 13, item 9).
func TestRotatedPasswordFileTakesEffect(t *testing.T) {
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	t.Cleanup(origin.Close)
	target := strings.TrimPrefix(origin.URL, "http://")
	secret := newProjectedDir(t, "password", "old-secret\n")
	s := newServer(t)
	path := writeConfig(t, `proxy:
  listen: "`+s.proxy+`"
  proxy_protocol: "off"
admin:
  listen: "`+s.admin+`"
tenants:
  - name: build
    users: [{name: ci, password_file: "`+secret.path()+`"}]
    rules:
      - name: loopback-origins
        cidrs: ["127.0.0.0/8"]
`)
	startWithConfig(t, path, s)
	status := func(password string) int {
		auth := base64.StdEncoding.EncodeToString([]byte("ci:" + password))
		return rawStatus(t, s.proxy, fmt.Sprintf("GET http://%s/ HTTP/1.1\r\nHost: %s\r\nProxy-Authorization: Basic %s\r\nConnection: close\r\n\r\n", target, target, auth))
	}
	if got := status("old-secret"); got != 200 {
		t.Fatalf("old password before the rotation: %d, want 200", got)
	}
	secret.swap("new-secret\n")
	waitFor(t, 15*time.Second, "the reload after the Secret rotation", func() bool {
		return strings.Contains(s.stderr.String(), `"cause":"referenced_file"`)
	})
	if got := status("old-secret"); got != 407 {
		t.Errorf("old password after the rotation: %d, want 407", got)
	}
	if got := status("new-secret"); got != 200 {
		t.Errorf("new password after the rotation: %d, want 200", got)
	}
	m := metricsText(t, s.admin)
	if !strings.Contains(m, `egressd_config_reload_triggers_total{cause="referenced_file"} 1`) {
		t.Errorf("metrics do not count one referenced_file reload:\n%s", grepLines(m, "reload"))
	}
}

func grepLines(text, sub string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
