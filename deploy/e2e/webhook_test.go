package e2e

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
	corev1 "k8s.io/api/core/v1"

	"github.com/egressd/egressd/internal/testpki"
)

// webhook is egressd-inject running on loopback with a generated serving
// certificate, registered with the API server through the repository's
// MutatingWebhookConfiguration.
type webhook struct {
	cmd      *exec.Cmd
	url      string
	caPEM    []byte
	proxyURL string
}

func buildInject(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "egressd-inject")
	cmd := exec.Command(goTool(), "build", "-o", bin, "../../cmd/egressd-inject")
	cmd.Env = append(os.Environ(), "GOTOOLCHAIN=local")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build egressd-inject: %v\n%s", err, out)
	}
	return bin
}

// servingCert returns a CA and a leaf for 127.0.0.1 signed by it, in PEM.
func servingCert(t *testing.T) (caPEM, certPEM, keyPEM []byte) {
	t.Helper()
	ca := testpki.NewRoot(t, "e2e webhook CA")
	leaf := ca.Leaf(t, "127.0.0.1")
	keyPEM, err := leaf.KeyPEM()
	if err != nil {
		t.Fatal(err)
	}
	return ca.CertPEM(), leaf.CertPEM(), keyPEM
}

// startWebhook runs egressd-inject with the repository's config.yaml,
// changed only where a loopback test must: listen address, no admin port,
// certificate paths, no shutdown delay.
func startWebhook(t *testing.T) *webhook {
	t.Helper()
	bin := buildInject(t)
	dir := t.TempDir()
	caPEM, certPEM, keyPEM := servingCert(t)
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	if err := os.WriteFile(certFile, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile("../workload/inject/config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := yaml.Unmarshal(raw, &cfg); err != nil {
		t.Fatal(err)
	}
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	cfg["listen"] = fmt.Sprintf("127.0.0.1:%d", port)
	cfg["admin_listen"] = "off"
	cfg["tls"] = map[string]any{"cert_file": certFile, "key_file": keyFile}
	cfg["shutdown_delay"] = "0s"
	out, _ := yaml.Marshal(cfg)
	cfgFile := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(cfgFile, out, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-config", cfgFile)
	log, _ := os.Create(filepath.Join(dir, "webhook.log"))
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w := &webhook{cmd: cmd, url: fmt.Sprintf("https://127.0.0.1:%d", port), caPEM: caPEM,
		proxyURL: cfg["proxy"].(map[string]any)["http_proxy"].(string)}
	t.Cleanup(w.stop)
	if err := waitHTTP(w.url+"/healthz", nil, 20*time.Second); err != nil {
		b, _ := os.ReadFile(filepath.Join(dir, "webhook.log"))
		t.Fatalf("egressd-inject: %v\n%s", err, b)
	}
	return w
}

func (w *webhook) stop() {
	if w.cmd.ProcessState != nil {
		return
	}
	_ = w.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = w.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		_ = w.cmd.Process.Kill()
		<-done
	}
}

// register applies the repository's MutatingWebhookConfiguration as
// rendered, with clientConfig pointed at the loopback webhook. The one
// webhook is listed twice (the copy named again.inject.egressd.io), so
// every admission passes the pod through egressd-inject a second time
// with the first pass's output: what a reinvocation hands it.
func (w *webhook) register(t *testing.T) {
	t.Helper()
	var mwc map[string]any
	for _, o := range documents(t, render(t, "../workload/inject")) {
		if o["kind"] == "MutatingWebhookConfiguration" {
			mwc = o
		}
	}
	if mwc == nil {
		t.Fatal("inject kustomization renders no MutatingWebhookConfiguration")
	}
	hooks := mwc["webhooks"].([]any)
	first := hooks[0].(map[string]any)
	path := first["clientConfig"].(map[string]any)["service"].(map[string]any)["path"].(string)
	cc := map[string]any{"url": w.url + path, "caBundle": base64.StdEncoding.EncodeToString(w.caPEM)}
	first["clientConfig"] = cc
	again := map[string]any{}
	for k, v := range first {
		again[k] = v
	}
	again["name"] = "again.inject.egressd.io"
	mwc["webhooks"] = []any{first, again}
	mustKubectl(t, encode(t, []map[string]any{mwc}), "apply", "--validate=strict", "-f", "-")
	t.Cleanup(func() {
		_, _ = kubectl(t, nil, "delete", "mutatingwebhookconfiguration", "egressd-inject", "--ignore-not-found")
	})
}

// filteredNamespace creates a namespace for pods (and its default
// ServiceAccount: no controller-manager runs here to create it).
func filteredNamespace(t *testing.T, name string) {
	t.Helper()
	mustKubectl(t, []byte(fmt.Sprintf(`apiVersion: v1
kind: Namespace
metadata: {name: %s}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: default, namespace: %s}
`, name, name)), "apply", "--validate=strict", "-f", "-")
}

func podYAML(ns, name string, labels, annotations map[string]string, initContainer bool) []byte {
	pod := map[string]any{
		"apiVersion": "v1", "kind": "Pod",
		"metadata": map[string]any{"name": name, "namespace": ns, "labels": labels, "annotations": annotations},
		"spec": map[string]any{
			"containers": []any{map[string]any{"name": "app", "image": "registry.invalid/app:1"}},
		},
	}
	if initContainer {
		pod["spec"].(map[string]any)["initContainers"] = []any{map[string]any{"name": "fetch", "image": "registry.invalid/fetch:1"}}
	}
	b, _ := yaml.Marshal(pod)
	return b
}

// createPod creates the pod through the API server (the whole admission
// chain) and returns the object it stored.
func createPod(t *testing.T, doc []byte) (corev1.Pod, error) {
	t.Helper()
	out, err := kubectl(t, doc, "create", "--validate=strict", "-f", "-", "-o", "json")
	if err != nil {
		return corev1.Pod{}, err
	}
	var p corev1.Pod
	if err := json.Unmarshal([]byte(out), &p); err != nil {
		t.Fatal(err)
	}
	return p, nil
}

func envCount(c corev1.Container, name string) (n int, value string) {
	for _, e := range c.Env {
		if e.Name == name {
			n++
			value = e.Value
		}
	}
	return n, value
}

func assertInjected(t *testing.T, c corev1.Container, proxy string) {
	t.Helper()
	for _, name := range []string{"HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "NO_PROXY", "no_proxy", "NODE_USE_ENV_PROXY", "SSL_CERT_FILE"} {
		n, v := envCount(c, name)
		if n != 1 {
			t.Errorf("container %s: %s appears %d times, want once (env %v)", c.Name, name, n, c.Env)
		}
		if strings.HasPrefix(strings.ToUpper(name), "HTTP") && v != proxy {
			t.Errorf("container %s: %s=%q, want %q", c.Name, name, v, proxy)
		}
	}
	mounts := 0
	for _, m := range c.VolumeMounts {
		if m.Name == "egressd-inject-ca" {
			mounts++
		}
	}
	if mounts != 1 {
		t.Errorf("container %s: %d CA mounts, want 1", c.Name, mounts)
	}
}

func assertUntouched(t *testing.T, p corev1.Pod) {
	t.Helper()
	for _, c := range append(p.Spec.InitContainers, p.Spec.Containers...) {
		if len(c.Env) != 0 {
			t.Errorf("container %s got env %v", c.Name, c.Env)
		}
	}
	for _, v := range p.Spec.Volumes {
		if v.Name == "egressd-inject-ca" {
			t.Errorf("pod got the CA volume")
		}
	}
}

func TestWebhookInjectsLabelledPodsThroughTheRealAdmissionChain(t *testing.T) {
	w := startWebhook(t)
	w.register(t)
	ns := "e2e-inject"
	filteredNamespace(t, ns)
	sel := map[string]string{"network": "filtered"}

	t.Run("labelled pod and its init container get the proxy and CA once", func(t *testing.T) {
		p, err := createPod(t, podYAML(ns, "labelled", sel, nil, true))
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Spec.InitContainers) != 1 || len(p.Spec.Containers) != 1 {
			t.Fatalf("containers %v %v", p.Spec.InitContainers, p.Spec.Containers)
		}
		assertInjected(t, p.Spec.InitContainers[0], w.proxyURL)
		assertInjected(t, p.Spec.Containers[0], w.proxyURL)
		vols := 0
		for _, v := range p.Spec.Volumes {
			if v.Name == "egressd-inject-ca" {
				vols++
				if v.ConfigMap == nil || v.ConfigMap.Name != "egressd-ca-bundle" {
					t.Errorf("CA volume %+v", v)
				}
			}
		}
		if vols != 1 {
			t.Errorf("%d CA volumes after two webhook passes, want 1", vols)
		}
		if p.Annotations["egressd.io/inject-status"] == "" {
			t.Errorf("no inject-status annotation: %v", p.Annotations)
		}
	})
	t.Run("unlabelled pod is not touched", func(t *testing.T) {
		p, err := createPod(t, podYAML(ns, "unlabelled", nil, nil, true))
		if err != nil {
			t.Fatal(err)
		}
		assertUntouched(t, p)
	})
	t.Run("opted-out pod is not touched", func(t *testing.T) {
		p, err := createPod(t, podYAML(ns, "opted-out", sel, map[string]string{"egressd.io/inject": "false"}, false))
		if err != nil {
			t.Fatal(err)
		}
		assertUntouched(t, p)
	})
	t.Run("with the webhook stopped failurePolicy Fail refuses a labelled pod", func(t *testing.T) {
		w.stop()
		_, err := createPod(t, podYAML(ns, "while-down", sel, nil, false))
		if err == nil || !strings.Contains(err.Error(), "inject.egressd.io") {
			t.Fatalf("created or wrong error: %v", err)
		}
		// The objectSelector keeps the outage away from unlabelled pods.
		if _, err := createPod(t, podYAML(ns, "unlabelled-while-down", nil, nil, false)); err != nil {
			t.Fatalf("unlabelled pod refused while the webhook is down: %v", err)
		}
	})
}
