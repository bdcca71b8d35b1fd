package main

import (
	"bufio"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// secretDir lays out a directory the way the kubelet projects a Secret:
// each key is a symlink ci -> ..data/ci, and ..data -> ..<timestamp>. A
// rotation writes a new timestamped directory and renames a new ..data
// symlink over the old one, so the path egressd reads never changes.
type secretDir struct {
	t       *testing.T
	dir     string
	version int
}

func newSecretDir(t *testing.T, key, value string) *secretDir {
	d := &secretDir{t: t, dir: t.TempDir()}
	d.rotate(key, value)
	if err := os.Symlink(filepath.Join("..data", key), filepath.Join(d.dir, key)); err != nil {
		t.Fatal(err)
	}
	return d
}

func (d *secretDir) rotate(key, value string) {
	d.t.Helper()
	d.version++
	ver := fmt.Sprintf("..2026_12_02_10_00_0%d.12345", d.version)
	if err := os.Mkdir(filepath.Join(d.dir, ver), 0o755); err != nil {
		d.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(d.dir, ver, key), []byte(value+"\n"), 0o600); err != nil {
		d.t.Fatal(err)
	}
	tmp := filepath.Join(d.dir, "..data_tmp")
	if err := os.Symlink(ver, tmp); err != nil {
		d.t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(d.dir, "..data")); err != nil {
		d.t.Fatal(err)
	}
}

// authedGet sends one GET through the proxy with Basic proxy credentials.
func authedGet(t *testing.T, proxyAddr, origin, user, pass string) int {
	t.Helper()
	c, err := net.DialTimeout("tcp", proxyAddr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial proxy: %v", err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	auth := base64.StdEncoding.EncodeToString([]byte(user + ":" + pass))
	fmt.Fprintf(c, "GET http://%s/ HTTP/1.1\r\nHost: %s\r\nProxy-Authorization: Basic %s\r\nConnection: close\r\n\r\n", origin, origin, auth)
	resp, err := http.ReadResponse(bufio.NewReader(c), &http.Request{Method: "GET"})
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

// TestRotatedPasswordSecretIsReadWithoutConfigChange: the password file
// is a Kubernetes Secret key; after the Secret is rotated (a ..data
// symlink swap, the config file untouched) the old password stops
// working and the new one works, and the reload is counted with cause
// referenced_file.
func TestRotatedPasswordSecretIsReadWithoutConfigChange(t *testing.T) {
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") }))
	t.Cleanup(origin.Close)
	originAddr := strings.TrimPrefix(origin.URL, "http://")
	secret := newSecretDir(t, "ci", "old-password")
	s := newServer(t)
	base := validConfig(s.proxy, s.admin)
	i := strings.Index(base, "    rules:\n")
	cfg := base[:i] + "    require_auth: true\n    users:\n      - name: ci\n        password_file: " + filepath.Join(secret.dir, "ci") + "\n" + base[i:]
	path := writeConfig(t, cfg)
	startWithConfig(t, path, s)

	if got := authedGet(t, s.proxy, originAddr, "ci", "old-password"); got != 200 {
		t.Fatalf("before rotation, old password: %d, want 200", got)
	}
	secret.rotate("ci", "new-password")
	waitFor(t, 15*time.Second, "the reload caused by the rotated Secret", func() bool {
		return strings.Contains(metricsText(t, s.admin), `egressd_config_reload_triggers_total{cause="referenced_file"} 1`)
	})
	if got := authedGet(t, s.proxy, originAddr, "ci", "new-password"); got != 200 {
		t.Errorf("after rotation, new password: %d, want 200", got)
	}
	if got := authedGet(t, s.proxy, originAddr, "ci", "old-password"); got != 407 {
		t.Errorf("after rotation, old password: %d, want 407", got)
	}
	m := metricsText(t, s.admin)
	for _, want := range []string{`egressd_config_reload_triggers_total{cause="config"} 0`, `egressd_config_reload_triggers_total{cause="signal"} 0`} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}
