package inject

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	jsonpatch "github.com/evanphx/json-patch/v5"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap/zaptest"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
)

const (
	testProxy = "http://10.2.128.100:3128"
	// testNoProxy is buildNoProxy(testConfig().NoProxy) written out, so a
	// change in order or content shows up here.
	testNoProxy = "localhost,127.0.0.1,::1,10.0.0.0/16,10.244.0.0/16,.cluster.local,.svc," +
		"kubernetes.default,kubernetes.default.svc,myaks-abc.hcp.westeurope.azmk8s.io,169.254.169.254,.corp.example"
	testCAFile = "/etc/egressd/ca/ca-bundle.crt"
)

func testConfig() Config {
	cfg := DefaultConfig()
	cfg.Proxy.HTTPProxy = testProxy
	cfg.Proxy.HTTPSProxy = testProxy
	cfg.NoProxy.ServiceCIDRs = []string{"10.0.0.0/16"}
	cfg.NoProxy.PodCIDRs = []string{"10.244.0.0/16"}
	cfg.NoProxy.APIServerFQDN = "myaks-abc.hcp.westeurope.azmk8s.io"
	cfg.NoProxy.Extra = []string{".corp.example"}
	cfg.CA.ConfigMap = "egressd-ca-bundle"
	return cfg
}

// newTestServer builds a Server on a fresh registry and serves its Handler
// on a loopback listener.
func newTestServer(t *testing.T, cfg Config) (*Server, *prometheus.Registry, string) {
	t.Helper()
	reg := prometheus.NewRegistry()
	s, err := New(cfg, zaptest.NewLogger(t), reg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(ts.Close)
	return s, reg, ts.URL
}

// reviewJSON wraps a pod in an AdmissionReview as the API server sends it.
func reviewJSON(uid, operation, podJSON string) string {
	return fmt.Sprintf(`{
  "apiVersion": "admission.k8s.io/v1",
  "kind": "AdmissionReview",
  "request": {
    "uid": %q,
    "kind": {"group": "", "version": "v1", "kind": "Pod"},
    "resource": {"group": "", "version": "v1", "resource": "pods"},
    "requestKind": {"group": "", "version": "v1", "kind": "Pod"},
    "requestResource": {"group": "", "version": "v1", "resource": "pods"},
    "namespace": "shop",
    "operation": %q,
    "userInfo": {"username": "system:serviceaccount:kube-system:replicaset-controller", "groups": ["system:serviceaccounts"]},
    "object": %s,
    "oldObject": null,
    "dryRun": false,
    "options": {"kind": "CreateOptions", "apiVersion": "meta.k8s.io/v1"}
  }
}`, uid, operation, podJSON)
}

// postReview sends body to /mutate and returns the status, and the decoded
// review when the status is 200.
func postReview(t *testing.T, client *http.Client, baseURL, body string) (int, admissionv1.AdmissionReview) {
	t.Helper()
	resp, err := client.Post(baseURL+"/mutate", "application/json", bytes.NewBufferString(body))
	if err != nil {
		t.Fatalf("POST /mutate: %v", err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	var out admissionv1.AdmissionReview
	if resp.StatusCode == http.StatusOK {
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&out); err != nil {
			t.Fatalf("decode response %s: %v", data, err)
		}
	}
	return resp.StatusCode, out
}

// applyPatch applies a JSONPatch response to the original pod document.
func applyPatch(t *testing.T, podJSON string, patch []byte) string {
	t.Helper()
	p, err := jsonpatch.DecodePatch(patch)
	if err != nil {
		t.Fatalf("decode patch %s: %v", patch, err)
	}
	out, err := p.Apply([]byte(podJSON))
	if err != nil {
		t.Fatalf("apply patch %s: %v", patch, err)
	}
	return string(out)
}

// decodePodStrict decodes a pod rejecting unknown fields, so a patch that
// writes a misspelled or misplaced field fails the test.
func decodePodStrict(t *testing.T, podJSON string) corev1.Pod {
	t.Helper()
	dec := json.NewDecoder(bytes.NewBufferString(podJSON))
	dec.DisallowUnknownFields()
	var pod corev1.Pod
	if err := dec.Decode(&pod); err != nil {
		t.Fatalf("strict decode of patched pod: %v\n%s", err, podJSON)
	}
	return pod
}

// envList renders a container's env as NAME=value, or NAME<-from for valueFrom.
func envList(c corev1.Container) []string {
	out := []string{}
	for _, e := range c.Env {
		if e.ValueFrom != nil {
			out = append(out, e.Name+"<-from")
			continue
		}
		out = append(out, e.Name+"="+e.Value)
	}
	return out
}

// injectedEnv is what a container without explicit settings ends up with,
// in the order the webhook appends it.
func injectedEnv(withCA bool) []string {
	env := []string{
		"HTTP_PROXY=" + testProxy, "http_proxy=" + testProxy,
		"HTTPS_PROXY=" + testProxy, "https_proxy=" + testProxy,
		"NO_PROXY=" + testNoProxy, "no_proxy=" + testNoProxy, "NODE_USE_ENV_PROXY=1",
	}
	if withCA {
		env = append(env, "SSL_CERT_FILE="+testCAFile, "NODE_EXTRA_CA_CERTS="+testCAFile, "REQUESTS_CA_BUNDLE="+testCAFile)
	}
	return env
}

func concat(parts ...[]string) []string {
	var out []string
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}
