package e2e

import (
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
)

// sidecarWebhook is a second mutating webhook, run by the test on loopback,
// that adds a container after egressd-inject has answered: the case the
// API server's reinvocationPolicy: IfNeeded exists for.
func sidecarWebhook(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		var review admissionv1.AdmissionReview
		if err := json.Unmarshal(body, &review); err != nil || review.Request == nil {
			http.Error(w, "bad review", http.StatusBadRequest)
			return
		}
		var pod corev1.Pod
		_ = json.Unmarshal(review.Request.Object.Raw, &pod)
		resp := &admissionv1.AdmissionResponse{UID: review.Request.UID, Allowed: true}
		has := false
		for _, c := range pod.Spec.Containers {
			has = has || c.Name == "sidecar"
		}
		if !has {
			patch := []byte(`[{"op":"add","path":"/spec/containers/-","value":{"name":"sidecar","image":"registry.invalid/sidecar:1"}}]`)
			pt := admissionv1.PatchTypeJSONPatch
			resp.Patch, resp.PatchType = patch, &pt
		}
		review.Response = resp
		review.Request = nil
		_ = json.NewEncoder(w).Encode(review)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestWebhookReinvokedAfterAnotherWebhookAddsAContainerInjectsItOnce(t *testing.T) {
	w := startWebhook(t)
	w.register(t)
	ns := "e2e-reinvoke"
	filteredNamespace(t, ns)
	side := sidecarWebhook(t)
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: side.Certificate().Raw})
	// Configurations are called in name order: egressd-inject first, then
	// this one, whose change makes the API server call egressd-inject again.
	mwc := fmt.Sprintf(`apiVersion: admissionregistration.k8s.io/v1
kind: MutatingWebhookConfiguration
metadata: {name: zz-e2e-sidecar}
webhooks:
  - name: sidecar.e2e.egressd.io
    admissionReviewVersions: ["v1"]
    sideEffects: None
    failurePolicy: Fail
    timeoutSeconds: 5
    clientConfig: {url: %q, caBundle: %q}
    rules: [{operations: ["CREATE"], apiGroups: [""], apiVersions: ["v1"], resources: ["pods"]}]
    namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: %s}}
    objectSelector: {matchLabels: {network: filtered}}
`, side.URL+"/mutate", base64.StdEncoding.EncodeToString(ca), ns)
	mustKubectl(t, []byte(mwc), "apply", "--validate=strict", "-f", "-")
	t.Cleanup(func() {
		_, _ = kubectl(t, nil, "delete", "mutatingwebhookconfiguration", "zz-e2e-sidecar", "--ignore-not-found")
	})

	p, err := createPod(t, podYAML(ns, "reinvoked", map[string]string{"network": "filtered"}, nil, false))
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Spec.Containers) != 2 || p.Spec.Containers[1].Name != "sidecar" {
		t.Fatalf("containers %v: the sidecar webhook did not run", p.Spec.Containers)
	}
	// The sidecar exists only because of the later webhook; it has the
	// settings only if the API server re-invoked egressd-inject.
	for _, c := range p.Spec.Containers {
		assertInjected(t, c, w.proxyURL)
	}
	vols := 0
	for _, v := range p.Spec.Volumes {
		if v.Name == "egressd-inject-ca" {
			vols++
		}
	}
	if vols != 1 {
		t.Errorf("%d CA volumes after re-invocation, want 1", vols)
	}
}
