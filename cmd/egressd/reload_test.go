package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/egressd/egressd/internal/lockedbuf"
)

// configMapDir lays out a directory the way the kubelet projects a
// ConfigMap: config.yaml -> ..data/config.yaml, ..data -> ..<version>.
// swap publishes a new version by replacing the ..data symlink atomically,
// which never writes to the file egressd opened.
// A Secret is projected the same way, so newProjectedDir serves both.
type configMapDir struct {
	t       *testing.T
	dir     string
	name    string
	version int
}

func newConfigMapDir(t *testing.T, text string) *configMapDir {
	return newProjectedDir(t, "config.yaml", text)
}

func newProjectedDir(t *testing.T, name, text string) *configMapDir {
	d := &configMapDir{t: t, dir: t.TempDir(), name: name}
	d.swap(text)
	if err := os.Symlink(filepath.Join("..data", name), filepath.Join(d.dir, name)); err != nil {
		t.Fatal(err)
	}
	return d
}

func (d *configMapDir) path() string { return filepath.Join(d.dir, d.name) }

func (d *configMapDir) swap(text string) {
	d.t.Helper()
	d.version++
	ver := fmt.Sprintf("..2026_11_21_v%d", d.version)
	if err := os.Mkdir(filepath.Join(d.dir, ver), 0o755); err != nil {
		d.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(d.dir, ver, d.name), []byte(text), 0o644); err != nil {
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

// reloadConfig is validConfig with the demo tenant's rules replaced.
func reloadConfig(proxy, admin, rules string) string {
	base := validConfig(proxy, admin)
	i := strings.Index(base, "    rules:\n")
	return base[:i] + rules
}

const allowLoopback = `    rules:
      - name: loopback-origins
        cidrs: ["127.0.0.0/8"]
`

// denyAll has no rule that names loopback: the tenant default (deny) applies.
const denyAll = `    rules:
      - name: only-partner
        domains: [api.partner.test]
`

// newServer picks free loopback ports for a server not started yet.
func newServer(t *testing.T) *server {
	return &server{proxy: freeAddr(t), admin: freeAddr(t), stdout: &lockedbuf.Buffer{}, stderr: &lockedbuf.Buffer{}, exited: make(chan error, 1)}
}

// startWithConfig runs `egressd serve -config path` until the test ends.
func startWithConfig(t *testing.T, path string, s *server) {
	t.Helper()
	s.cmd = exec.Command(binPath, "serve", "-config", path)
	s.cmd.Stdout, s.cmd.Stderr = s.stdout, s.stderr
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("start egressd: %v", err)
	}
	go func() { s.exited <- s.cmd.Wait() }()
	t.Cleanup(func() {
		select {
		case <-s.exited:
		default:
			s.cmd.Process.Kill()
			<-s.exited
		}
		if t.Failed() {
			t.Logf("egressd stderr:\n%s", s.stderr)
		}
	})
	waitFor(t, 20*time.Second, "/readyz to answer 200", func() bool { return s.readyz(t) == http.StatusOK })
}

// getStatus sends one absolute-form GET through the proxy.
func getStatus(t *testing.T, proxyAddr, target string) int {
	t.Helper()
	return rawStatus(t, proxyAddr, fmt.Sprintf("GET http://%s/ HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", target, target))
}

func metricsText(t *testing.T, admin string) string {
	t.Helper()
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{Proxy: nil}}
	resp, err := client.Get("http://" + admin + "/metrics")
	if err != nil {
		t.Fatalf("scrape: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// TestConfigMapSwapReloadsWithoutDroppingTunnels is the hot-reload
// contract: a ConfigMap update (a symlink swap, no signal) changes the
// policy for new requests, an open tunnel keeps the decision it got, and a
// broken config is refused with the old policy kept in force.
func TestConfigMapSwapReloadsWithoutDroppingTunnels(t *testing.T) {
	s := newServer(t)
	// With revocation off (it is on by default; TestReloadClosesTunnelsAndKeepAlivesItNowDenies
	// covers it), a tunnel keeps the decision it got.
	noRevoke := func(text string) string {
		return strings.Replace(text, "  proxy_protocol: optional\n", "  proxy_protocol: optional\n  revoke_on_reload: false\n", 1)
	}
	cm := newConfigMapDir(t, noRevoke(reloadConfig(s.proxy, s.admin, allowLoopback)))
	startWithConfig(t, cm.path(), s)
	echo := startEcho(t)

	c, br := openTunnel(t, s.proxy, echo)
	echoOnce(t, c, br, "before")
	if got := getStatus(t, s.proxy, echo); got != 200 && got != 502 {
		// The echo server is not HTTP; anything but 403 shows the policy allowed it.
		t.Fatalf("before reload: %d, want the request to pass the policy", got)
	}

	cm.swap(noRevoke(reloadConfig(s.proxy, s.admin, denyAll)))
	waitFor(t, 15*time.Second, "the swapped policy to deny", func() bool { return getStatus(t, s.proxy, echo) == 403 })
	echoOnce(t, c, br, "after the swap") // the tunnel decided under the old policy lives on

	cm.swap("proxy:\n  listen: [not, a, string]\n")
	s.cmd.Process.Signal(syscall.SIGHUP)
	waitFor(t, 15*time.Second, "the broken reload to be logged", func() bool {
		return strings.Contains(s.stderr.String(), "config reload failed")
	})
	if got := getStatus(t, s.proxy, echo); got != 403 {
		t.Fatalf("after a broken reload: %d, want 403 from the policy still in force", got)
	}
	echoOnce(t, c, br, "after the broken reload")
	m := metricsText(t, s.admin)
	for _, want := range []string{`egressd_config_reloads_total{result="failure"} 1`, `egressd_config_last_reload_successful 0`} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}

// TestExplainAgreesWithProxy asks `egressd explain` about the requests the
// proxy answers, with the same config, and compares the verdicts.
func TestExplainAgreesWithProxy(t *testing.T) {
	s := newServer(t)
	path := writeConfig(t, reloadConfig(s.proxy, s.admin, `    rules:
      - name: no-admin
        action: deny
        cidrs: ["127.0.0.0/8"]
        ports: ["9"]
      - name: loopback-origins
        cidrs: ["127.0.0.0/8"]
`))
	startWithConfig(t, path, s)
	echo := startEcho(t)
	tests := []struct {
		target   string
		wantRule string
		allowed  bool
	}{
		{target: echo, wantRule: "loopback-origins", allowed: true},
		{target: "127.0.0.1:9", wantRule: "no-admin", allowed: false},
		{target: "[::1]:80", wantRule: "default", allowed: false},
	}
	for _, tc := range tests {
		t.Run(tc.target, func(t *testing.T) {
			out, stderr, code := egressd(t, "explain", "-config", path, "--link-id", "1001", "http://"+tc.target+"/")
			if code != 0 {
				t.Fatalf("explain exit %d: %s", code, stderr)
			}
			if !strings.Contains(out, tc.wantRule) {
				t.Fatalf("explain does not name rule %q:\n%s", tc.wantRule, out)
			}
			var decision string
			for _, line := range strings.Split(out, "\n") {
				if v, ok := strings.CutPrefix(line, "decision:"); ok {
					decision = strings.Fields(v)[0]
				}
			}
			proxied := getStatus(t, s.proxy, tc.target) != 403
			if proxied != tc.allowed {
				t.Fatalf("proxy allowed=%v, want %v", proxied, tc.allowed)
			}
			if explained := decision == "allow"; explained != proxied {
				t.Fatalf("proxy allowed=%v but explain decided %q:\n%s", proxied, decision, out)
			}
		})
	}
}

// TestReloadWarnsOnlyWhenTheProxySectionChanged: a reload compares the
// parsed proxy section with the one the listener runs with, so a rules-only
// change is applied silently and a changed listener setting is flagged as
// waiting for a restart.
func TestReloadWarnsOnlyWhenTheProxySectionChanged(t *testing.T) {
	s := newServer(t)
	cm := newConfigMapDir(t, reloadConfig(s.proxy, s.admin, allowLoopback))
	startWithConfig(t, cm.path(), s)
	reloaded := func() int { return strings.Count(s.stderr.String(), `"config reloaded"`) }
	const warning = "section changed; listener settings take effect at the next restart"

	cm.swap(reloadConfig(s.proxy, s.admin, denyAll))
	waitFor(t, 15*time.Second, "the rules-only reload", func() bool { return reloaded() == 1 })
	if strings.Contains(s.stderr.String(), warning) {
		t.Fatalf("a rules-only reload warned that the proxy section changed:\n%s", s.stderr)
	}

	cm.swap(strings.Replace(reloadConfig(s.proxy, s.admin, denyAll), "  drain_timeout: 10s\n", "  drain_timeout: 11s\n", 1))
	waitFor(t, 15*time.Second, "the proxy-section reload", func() bool { return reloaded() == 2 })
	if !strings.Contains(s.stderr.String(), warning) {
		t.Fatalf("a changed drain_timeout was not flagged:\n%s", s.stderr)
	}
}
