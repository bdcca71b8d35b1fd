package deploycheck

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"

	jsonpatch "github.com/evanphx/json-patch/v5"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	admissionv1 "k8s.io/api/admission/v1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"

	"github.com/egressd/egressd/inject"
)

// Names the webhook route uses.
const (
	// InjectConfigMap is the configMapGenerator name in deploy/workload/inject;
	// the rendered name carries a content hash after it.
	InjectConfigMap = "egressd-inject-config"
	// InjectDeployment is the webhook's Deployment.
	InjectDeployment = "egressd-inject"
)

// ErrNoWebhook means the set does not deploy egressd-inject.
var ErrNoWebhook = errors.New("deploycheck: no MutatingWebhookConfiguration in the rendered set")

// HasWebhook reports whether the set deploys the egressd-inject webhook.
func (s *Set) HasWebhook() bool {
	return len(typedOf[*admissionregistrationv1.MutatingWebhookConfiguration](s)) > 0
}

// injectConfig returns the webhook's config, parsed and validated by the
// webhook's own loader, and the ConfigMap it came from.
func injectConfig(s *Set) (inject.Config, *corev1.ConfigMap, error) {
	var found []*corev1.ConfigMap
	for _, cm := range typedOf[*corev1.ConfigMap](s) {
		if _, ok := cm.Data["config.yaml"]; ok && strings.HasPrefix(cm.Name, InjectConfigMap) {
			found = append(found, cm)
		}
	}
	if len(found) != 1 {
		return inject.Config{}, nil, fmt.Errorf("want exactly one ConfigMap %s* with config.yaml, found %d", InjectConfigMap, len(found))
	}
	cm := found[0]
	cfg, err := inject.ParseConfig([]byte(cm.Data["config.yaml"]))
	if err != nil {
		return inject.Config{}, cm, fmt.Errorf("ConfigMap %s config.yaml: %w", cm.Name, err)
	}
	return cfg, cm, nil
}

// mutatingWebhook returns the single webhook of the set's single
// MutatingWebhookConfiguration.
func mutatingWebhook(s *Set) (*admissionregistrationv1.MutatingWebhookConfiguration, *admissionregistrationv1.MutatingWebhook, error) {
	mwcs := typedOf[*admissionregistrationv1.MutatingWebhookConfiguration](s)
	if len(mwcs) == 0 {
		return nil, nil, ErrNoWebhook
	}
	if len(mwcs) != 1 || len(mwcs[0].Webhooks) != 1 {
		return nil, nil, fmt.Errorf("want one MutatingWebhookConfiguration with one webhook, found %d configurations", len(mwcs))
	}
	return mwcs[0], &mwcs[0].Webhooks[0], nil
}

// PodFromTemplate is the pod a ReplicaSet of d submits, as the webhook sees
// it at CREATE, minus the fields the API server defaults.
func PodFromTemplate(d *appsv1.Deployment) *corev1.Pod {
	pod := &corev1.Pod{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: *d.Spec.Template.ObjectMeta.DeepCopy(),
		Spec:       *d.Spec.Template.Spec.DeepCopy(),
	}
	pod.GenerateName = d.Name + "-"
	pod.Namespace = d.Namespace
	return pod
}

// InjectedPod sends pod through the webhook's real admission handler, built
// from cfg, and applies the JSON patch it answers with: what the API server
// would store. A denial is an error; warnings are returned as they would be
// printed by kubectl. The handler is called in process: the HTTPS transport
// is the inject package's own concern and tested there.
func InjectedPod(cfg inject.Config, pod *corev1.Pod) (*corev1.Pod, []string, error) {
	srv, err := inject.New(cfg, zap.NewNop(), prometheus.NewRegistry())
	if err != nil {
		return nil, nil, fmt.Errorf("build webhook: %w", err)
	}
	podJSON, err := json.Marshal(pod)
	if err != nil {
		return nil, nil, fmt.Errorf("encode pod: %w", err)
	}
	podKind := metav1.GroupVersionKind{Version: "v1", Kind: "Pod"}
	podResource := metav1.GroupVersionResource{Version: "v1", Resource: "pods"}
	review := admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request: &admissionv1.AdmissionRequest{
			UID:         types.UID("deploycheck"),
			Kind:        podKind,
			Resource:    podResource,
			RequestKind: &podKind, RequestResource: &podResource,
			Namespace: pod.Namespace,
			Operation: admissionv1.Create,
			Object:    runtime.RawExtension{Raw: podJSON},
		},
	}
	body, err := json.Marshal(review)
	if err != nil {
		return nil, nil, fmt.Errorf("encode review: %w", err)
	}
	req := httptest.NewRequest(http.MethodPost, "/mutate", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	srv.Handler().ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		return nil, nil, fmt.Errorf("webhook answered HTTP %d: %s", rec.Code, strings.TrimSpace(rec.Body.String()))
	}
	var out admissionv1.AdmissionReview
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
		return nil, nil, fmt.Errorf("decode webhook answer: %w", err)
	}
	resp := out.Response
	if resp == nil {
		return nil, nil, errors.New("webhook answer has no response")
	}
	if !resp.Allowed {
		msg := "no reason given"
		if resp.Result != nil {
			msg = resp.Result.Message
		}
		return nil, resp.Warnings, fmt.Errorf("webhook denied the pod: %s", msg)
	}
	patched := podJSON
	if len(resp.Patch) > 0 {
		patch, err := jsonpatch.DecodePatch(resp.Patch)
		if err != nil {
			return nil, resp.Warnings, fmt.Errorf("decode webhook patch: %w", err)
		}
		if patched, err = patch.Apply(podJSON); err != nil {
			return nil, resp.Warnings, fmt.Errorf("apply webhook patch: %w", err)
		}
	}
	// Strict, so a patch that writes a field a Pod does not have fails here
	// rather than being dropped by the API server.
	dec := json.NewDecoder(bytes.NewReader(patched))
	dec.DisallowUnknownFields()
	var result corev1.Pod
	if err := dec.Decode(&result); err != nil {
		return nil, resp.Warnings, fmt.Errorf("decode patched pod: %w", err)
	}
	return &result, resp.Warnings, nil
}

// injectedEnv is what the webhook gives a bare selected container: the
// exact variables, NO_PROXY included, that cfg produces.
func injectedEnv(cfg inject.Config) (map[string]string, error) {
	pod := &corev1.Pod{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{Name: "probe", Namespace: "probe", Labels: cfg.Selector},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "probe", Image: "probe"}}},
	}
	out, _, err := InjectedPod(cfg, pod)
	if err != nil {
		return nil, err
	}
	env := map[string]string{}
	for _, e := range out.Spec.Containers[0].Env {
		env[e.Name] = e.Value
	}
	return env, nil
}
