package inject

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"time"

	"go.uber.org/zap"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Log field names, in one place.
const (
	fieldNamespace = "namespace"
	fieldPod       = "pod"
	fieldUID       = "uid"
	fieldResult    = "result"
	fieldReason    = "reason"
	fieldOps       = "patch_ops"
	fieldOperation = "operation"
	fieldResource  = "resource"
)

// skipNotPodCreate is the skip reason for anything but pods/CREATE.
// Pod specs are immutable on UPDATE (env and volumes cannot change), so a
// patch there would only turn a valid update into a rejected one.
const skipNotPodCreate = "not_pod_create"

// errDecodePod marks an AdmissionRequest whose object is not a pod.
var errDecodePod = errors.New("inject: decode pod")

// serveMutate handles one AdmissionReview.
//
// HTTP errors are kept for requests that are not a usable AdmissionReview
// (wrong method or media type, too large, undecodable, no request or uid):
// without a uid there is no valid response to give, and the API server
// treats any non-200 answer as a failed call and applies the webhook's
// failurePolicy. A review that decodes always gets HTTP 200 with an
// AdmissionResponse, including when the pod inside it is unusable.
func (s *Server) serveMutate(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	defer func() { s.metrics.duration.Observe(time.Since(start).Seconds()) }()

	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		s.reject(w, http.StatusMethodNotAllowed, rejectMethod, "method must be POST")
		return
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		s.reject(w, http.StatusUnsupportedMediaType, rejectContentType, "content type must be application/json")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.maxBytes))
	if err != nil {
		if maxErr := (*http.MaxBytesError)(nil); errors.As(err, &maxErr) {
			s.reject(w, http.StatusRequestEntityTooLarge, rejectTooLarge, fmt.Sprintf("body exceeds %d bytes", s.maxBytes))
			return
		}
		s.reject(w, http.StatusBadRequest, rejectMalformed, "read body: "+err.Error())
		return
	}
	review, err := decodeReview(body)
	if err != nil {
		s.reject(w, http.StatusBadRequest, rejectMalformed, err.Error())
		return
	}

	out := admissionv1.AdmissionReview{
		TypeMeta: review.TypeMeta,
		Response: s.review(review.Request),
	}
	data, err := json.Marshal(out)
	if err != nil {
		// Only reachable through a bug in the response types; the API
		// server applies failurePolicy to the 500.
		s.log.Error("encode admission response", zap.Error(err))
		http.Error(w, "encode response", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(data)
}

// decodeReview is lenient about unknown fields, unlike config loading: a
// newer API server may add fields, and refusing them would fail every pod.
func decodeReview(body []byte) (admissionv1.AdmissionReview, error) {
	var review admissionv1.AdmissionReview
	if err := json.Unmarshal(body, &review); err != nil {
		return review, fmt.Errorf("decode AdmissionReview: %w", err)
	}
	gvk := admissionv1.SchemeGroupVersion.WithKind("AdmissionReview")
	if review.GroupVersionKind() != gvk {
		return review, fmt.Errorf("decode AdmissionReview: apiVersion/kind %q/%q, want %q/%q (admissionReviewVersions must be [v1])",
			review.APIVersion, review.Kind, gvk.GroupVersion().String(), gvk.Kind)
	}
	if review.Request == nil || review.Request.UID == "" {
		return review, errors.New("decode AdmissionReview: missing request or request.uid")
	}
	return review, nil
}

// reject answers a request that is not a usable AdmissionReview.
func (s *Server) reject(w http.ResponseWriter, code int, reason, msg string) {
	s.metrics.rejected.WithLabelValues(reason).Inc()
	s.log.Warn("reject admission request", zap.Int("status", code), zap.String(fieldReason, reason), zap.String("error", msg))
	http.Error(w, msg, code)
}

// review decides one AdmissionRequest. It always returns a response
// carrying the request's uid, as the API server requires.
func (s *Server) review(req *admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse {
	resp := &admissionv1.AdmissionResponse{UID: req.UID, Allowed: true}
	log := s.log.With(zap.String(fieldUID, string(req.UID)), zap.String(fieldNamespace, req.Namespace))

	podResource := metav1.GroupVersionResource{Version: "v1", Resource: "pods"}
	if req.Resource != podResource || req.SubResource != "" || req.Operation != admissionv1.Create {
		s.metrics.pods.WithLabelValues(resultSkipped).Inc()
		log.Debug("admission review skipped", zap.String(fieldReason, skipNotPodCreate),
			zap.String(fieldOperation, string(req.Operation)), zap.String(fieldResource, req.Resource.String()))
		return resp
	}

	var pod corev1.Pod
	if err := json.Unmarshal(req.Object.Raw, &pod); err != nil {
		return s.fail(resp, log, fmt.Errorf("%w: %w", errDecodePod, err))
	}
	log = log.With(zap.String(fieldPod, podName(&pod)))

	out, err := s.mut.mutate(&pod)
	if err != nil {
		return s.fail(resp, log, err)
	}
	resp.Warnings = out.warnings
	if len(out.ops) == 0 {
		s.metrics.pods.WithLabelValues(resultSkipped).Inc()
		log.Debug("admission review skipped", zap.String(fieldReason, out.skip))
		return resp
	}
	patch, err := json.Marshal(out.ops)
	if err != nil {
		return s.fail(resp, log, fmt.Errorf("encode patch: %w", err))
	}
	pt := admissionv1.PatchTypeJSONPatch
	resp.Patch, resp.PatchType = patch, &pt
	s.metrics.pods.WithLabelValues(resultMutated).Inc()
	log.Info("pod mutated", zap.String(fieldResult, resultMutated), zap.Int(fieldOps, len(out.ops)))
	return resp
}

// fail applies failure_policy to a pod the webhook should have mutated but
// could not: Ignore admits it unchanged with a warning kubectl prints, Fail
// denies it with the reason.
func (s *Server) fail(resp *admissionv1.AdmissionResponse, log *zap.Logger, err error) *admissionv1.AdmissionResponse {
	s.metrics.pods.WithLabelValues(resultError).Inc()
	log.Warn("admission review failed", zap.String("failure_policy", s.failurePolicy), zap.Error(err))
	msg := "egressd-inject: proxy settings not injected: " + err.Error()
	if s.failurePolicy == FailurePolicyIgnore {
		resp.Allowed = true
		resp.Warnings = append(resp.Warnings, msg)
		return resp
	}
	resp.Allowed = false
	resp.Result = &metav1.Status{Status: metav1.StatusFailure, Code: statusFor(err), Message: msg}
	return resp
}

// statusFor maps a review error to the code in the denial's Status.
func statusFor(err error) int32 {
	if errors.Is(err, errDecodePod) {
		return http.StatusBadRequest
	}
	return http.StatusInternalServerError
}

// podName is the name to log; at CREATE it is often empty and only
// generateName is set (ReplicaSet pods).
func podName(pod *corev1.Pod) string {
	if pod.Name != "" {
		return pod.Name
	}
	return pod.GenerateName + "*"
}
