package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// cluster is one etcd and one kube-apiserver on loopback, shared by every
// test of the package (starting them takes seconds, building them minutes).
type cluster struct {
	dir        string
	kubeconfig string
	procs      []*exec.Cmd
}

var theCluster *cluster

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	if _, err := exec.LookPath("kubectl"); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: kubectl not on PATH (it ships in the machine image; apt-get install kubectl)")
		return 1
	}
	bins, err := buildTools()
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e: build kube-apiserver and etcd:", err)
		return 1
	}
	c, err := startCluster(bins)
	if c != nil {
		defer c.stop()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e: start the control plane:", err)
		return 1
	}
	theCluster = c
	return m.Run()
}

// buildTools returns the directory holding etcd and kube-apiserver, built
// from tools/ unless the cache already has this exact tools module's build.
func buildTools() (string, error) {
	h := sha256.New()
	for _, f := range []string{"go.mod", "go.sum", "etcd/main.go", "kube-apiserver/main.go"} {
		b, err := os.ReadFile(filepath.Join("tools", f))
		if err != nil {
			return "", err
		}
		h.Write(b)
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		return "", err
	}
	dir := filepath.Join(cache, "egressd-e2e", hex.EncodeToString(h.Sum(nil))[:16])
	if exists(filepath.Join(dir, "etcd")) && exists(filepath.Join(dir, "kube-apiserver")) {
		return dir, nil
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return "", err
	}
	// Built into a temporary directory and renamed, so an interrupted
	// build never leaves a half-written binary in the cache.
	tmp, err := os.MkdirTemp(filepath.Dir(dir), "build-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	start := time.Now()
	fmt.Fprintf(os.Stderr, "e2e: building kube-apiserver and etcd into %s (cold: several minutes)\n", dir)
	cmd := exec.Command(goTool(), "build", "-trimpath", "-o", tmp+"/", "./etcd", "./kube-apiserver")
	cmd.Dir = "tools"
	cmd.Env = append(os.Environ(), "GOTOOLCHAIN=local", "GOFLAGS=-mod=readonly")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("%v\n%s", err, out)
	}
	if err := os.Rename(tmp, dir); err != nil && !exists(filepath.Join(dir, "kube-apiserver")) {
		return "", err
	}
	fmt.Fprintf(os.Stderr, "e2e: built in %s\n", time.Since(start).Round(time.Second))
	return dir, nil
}

func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return "go"
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// freePort asks the kernel for an unused loopback port.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

const adminToken = "e2e-admin-token"

func startCluster(bins string) (*cluster, error) {
	dir, err := os.MkdirTemp("", "egressd-e2e-")
	if err != nil {
		return nil, err
	}
	c := &cluster{dir: dir}
	ports := make([]int, 3)
	for i := range ports {
		if ports[i], err = freePort(); err != nil {
			return c, err
		}
	}
	client := fmt.Sprintf("http://127.0.0.1:%d", ports[0])
	peer := fmt.Sprintf("http://127.0.0.1:%d", ports[1])
	if err := c.start(filepath.Join(bins, "etcd"), "etcd.log",
		"--data-dir", filepath.Join(dir, "etcd"),
		"--listen-client-urls", client, "--advertise-client-urls", client,
		"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
		"--initial-cluster", "default="+peer, "--log-level", "warn"); err != nil {
		return c, err
	}
	if err := waitHTTP(client+"/health", nil, 30*time.Second); err != nil {
		return c, fmt.Errorf("etcd: %w\n%s", err, c.log("etcd.log"))
	}

	saKey := filepath.Join(dir, "sa.key")
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return c, err
	}
	if err := os.WriteFile(saKey, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}), 0o600); err != nil {
		return c, err
	}
	tokens := filepath.Join(dir, "tokens.csv")
	if err := os.WriteFile(tokens, []byte(adminToken+",e2e-admin,e2e-admin,system:masters\n"), 0o600); err != nil {
		return c, err
	}
	server := fmt.Sprintf("https://127.0.0.1:%d", ports[2])
	if err := c.start(filepath.Join(bins, "kube-apiserver"), "kube-apiserver.log",
		"--etcd-servers", client,
		"--bind-address", "127.0.0.1", "--secure-port", strconv.Itoa(ports[2]),
		"--advertise-address", "127.0.0.1",
		"--cert-dir", filepath.Join(dir, "certs"),
		"--token-auth-file", tokens,
		"--authorization-mode", "RBAC",
		"--service-account-issuer", "https://kubernetes.default.svc",
		"--service-account-key-file", saKey, "--service-account-signing-key-file", saKey,
		"--service-cluster-ip-range", "10.0.0.0/16"); err != nil {
		return c, err
	}
	if err := waitHTTP(server+"/readyz", http.Header{"Authorization": {"Bearer " + adminToken}}, 60*time.Second); err != nil {
		return c, fmt.Errorf("kube-apiserver: %w\n%s", err, c.log("kube-apiserver.log"))
	}
	c.kubeconfig = filepath.Join(dir, "kubeconfig")
	// kube-apiserver wrote a self-signed serving certificate (and its CA)
	// into --cert-dir; kubectl verifies against it.
	kc := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters: [{name: e2e, cluster: {server: %q, certificate-authority: %q}}]
users: [{name: e2e, user: {token: %q}}]
contexts: [{name: e2e, context: {cluster: e2e, user: e2e}}]
current-context: e2e
`, server, filepath.Join(dir, "certs", "apiserver.crt"), adminToken)
	return c, os.WriteFile(c.kubeconfig, []byte(kc), 0o600)
}

func (c *cluster) start(bin, logName string, args ...string) error {
	f, err := os.Create(filepath.Join(c.dir, logName))
	if err != nil {
		return err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Dir = c.dir
	// Its own process group: a signal to the test does not reach it
	// first, and stop ends exactly this process.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		f.Close()
		return err
	}
	c.procs = append(c.procs, cmd)
	return nil
}

func (c *cluster) log(name string) string {
	b, _ := os.ReadFile(filepath.Join(c.dir, name))
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// stop ends the servers by PID, API server first, then removes their data.
func (c *cluster) stop() {
	for i := len(c.procs) - 1; i >= 0; i-- {
		p := c.procs[i]
		_ = p.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = p.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = p.Process.Kill()
			<-done
		}
	}
	os.RemoveAll(c.dir)
}

func waitHTTP(url string, h http.Header, limit time.Duration) error {
	client := &http.Client{Timeout: 2 * time.Second, Transport: insecureLoopback()}
	deadline := time.Now().Add(limit)
	var last error
	for time.Now().Before(deadline) {
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		for k, v := range h {
			req.Header[k] = v
		}
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("status %d", resp.StatusCode)
		}
		last = err
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("not ready after %s: %v", limit, last)
}

// kubectl runs kubectl against the test cluster with stdin and returns
// stdout; the error carries stderr.
func kubectl(t *testing.T, stdin []byte, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "kubectl", append([]string{"--kubeconfig", theCluster.kubeconfig}, args...)...)
	cmd.Stdin = bytes.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return out.String(), errors.New(strings.TrimSpace(errb.String()))
	}
	return out.String(), nil
}

func mustKubectl(t *testing.T, stdin []byte, args ...string) string {
	t.Helper()
	out, err := kubectl(t, stdin, args...)
	if err != nil {
		t.Fatalf("kubectl %s: %v", strings.Join(args, " "), err)
	}
	return out
}
