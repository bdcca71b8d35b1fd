package proxy_test

import (
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/egressd/egressd/acl"
)

// startSquid runs a Squid parent on loopback that requires Basic auth
// from user child and resolves names only from its own hosts file (its
// DNS servers point at loopback), so it sends nothing off the machine.
// The test is skipped where Squid is not installed (bench/compare.sh
// installs squid-openssl).
func startSquid(t *testing.T, names ...string) (addr, accessLog string) {
	t.Helper()
	squid, err := exec.LookPath("squid")
	if err != nil {
		t.Skip("squid is not installed")
	}
	hash, err := exec.Command("openssl", "passwd", "-1", "squid-secret").Output()
	if err != nil {
		t.Skipf("openssl passwd: %v", err)
	}
	// Squid drops to its own user, which cannot enter t.TempDir's 0700
	// parent: use a directory of our own that it may write to.
	dir, err := os.MkdirTemp("", "egressd-squid-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o777)
	var hosts strings.Builder
	for _, n := range names {
		fmt.Fprintf(&hosts, "127.0.0.1 %s\n", n)
	}
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	passwd := write("passwd", "child:"+strings.TrimSpace(string(hash))+"\n")
	hostsFile := write("hosts", hosts.String())
	addr = freePort(t)
	accessLog = filepath.Join(dir, "access.log")
	conf := write("squid.conf", `http_port `+addr+`
auth_param basic program /usr/lib/squid/basic_ncsa_auth `+passwd+`
auth_param basic children 1 startup=1 idle=1
auth_param basic realm egressd-test
acl authed proxy_auth REQUIRED
acl lo src 127.0.0.0/8
http_access deny !authed
http_access allow lo
http_access deny all
cache deny all
access_log stdio:`+accessLog+`
cache_log `+filepath.Join(dir, "cache.log")+`
pid_filename `+filepath.Join(dir, "squid.pid")+`
coredump_dir `+dir+`
workers 1
visible_hostname egressd-test
hosts_file `+hostsFile+`
dns_nameservers 127.0.0.1
pinger_enable off
shutdown_lifetime 1 seconds
`)
	cmd := exec.Command(squid, "-N", "-f", conf)
	out := &strings.Builder{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(dir, "cache.log"))
			t.Logf("squid output:\n%s\ncache.log:\n%s", out, b)
		}
	})
	waitFor(t, 20*time.Second, "squid to listen", func() bool {
		select {
		case <-exited:
			t.Fatalf("squid exited:\n%s", out)
		default:
		}
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	return addr, accessLog
}

// egressd chained to Squid: GET and CONNECT through Squid with egressd's
// credentials, Squid resolving the name; wrong credentials make Squid's
// 407 a 502 parent_auth.
func TestParentProxyChainsToSquid(t *testing.T) {
	squid, accessLog := startSquid(t, "ok.origin.test")
	origin := strings.TrimPrefix(helloOrigin(t), "http://")
	_, oport, _ := net.SplitHostPort(origin)
	_, eport, _ := net.SplitHostPort(startEcho(t))
	shost, sport, _ := net.SplitHostPort(squid)
	child := func(creds string) *testProxy {
		return startProxy(t, withResolver(loopbackResolver()), withACL(func(c *acl.Config) {
			c.Tenants[0].Rules = []acl.RuleConfig{
				{Name: "names", Domains: []string{"ok.origin.test"}},
				{Name: "squid", CIDRs: []string{shost + "/32"}, Ports: []string{sport}},
			}
			c.Tenants[0].UpstreamProxy = &acl.UpstreamProxyConfig{URL: "http://" + squid, CredentialsFile: feedFile(t, creds)}
		}))
	}
	good := child("child:squid-secret\n")
	if status, body := getVia(t, good, "http://ok.origin.test:"+oport+"/", 0); status != 200 || string(body) != "hello" {
		t.Fatalf("GET through Squid: %d %q", status, body)
	}
	c, br := connectVia(t, good, "ok.origin.test:"+eport)
	fmt.Fprint(c, "ping")
	buf := make([]byte, 4)
	if _, err := io.ReadFull(br, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("tunnel through Squid: %q %v", buf, err)
	}
	c.Close()
	waitFor(t, 10*time.Second, "Squid's access log to show both requests as user child", func() bool {
		b, _ := os.ReadFile(accessLog)
		log := string(b)
		return strings.Contains(log, "GET http://ok.origin.test:"+oport+"/ child") &&
			strings.Contains(log, "CONNECT ok.origin.test:"+eport+" child")
	})

	bad := child("child:wrong\n")
	for _, tc := range []struct{ method, raw string }{
		{"GET", "GET http://ok.origin.test:" + oport + "/ HTTP/1.1\r\nHost: ok.origin.test\r\nConnection: close\r\n\r\n"},
		{"CONNECT", "CONNECT ok.origin.test:" + eport + " HTTP/1.1\r\nHost: ok.origin.test:" + eport + "\r\n\r\n"},
	} {
		resp, body, _, _ := rawExchange(t, bad.addr, tc.raw, tc.method)
		if resp.StatusCode != 502 || resp.Header.Get("X-Proxy-Error") != "parent_auth" {
			t.Errorf("%s with wrong Squid credentials: %d %v %q", tc.method, resp.StatusCode, resp.Header, body)
		}
	}
}
