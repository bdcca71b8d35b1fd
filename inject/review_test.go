package inject

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

const plainPod = `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"web","labels":{"network":"filtered"}},"spec":{"containers":[{"name":"app","image":"shop:1"}]}}`

// Requests that are not a usable AdmissionReview get an HTTP error (the API
// server then applies failurePolicy); they must never crash the handler.
func TestMutateRejectsUnusableRequests(t *testing.T) {
	cfg := testConfig()
	cfg.MaxRequestBytes = 4096
	cases := []struct {
		name        string
		method      string
		contentType string
		body        string
		wantCode    int
		wantBody    string
		wantReason  string
	}{
		{name: "GET", method: http.MethodGet, wantCode: 405, wantBody: "method must be POST", wantReason: rejectMethod},
		{name: "form body", method: http.MethodPost, contentType: "application/x-www-form-urlencoded", body: "a=b",
			wantCode: 415, wantBody: "content type must be application/json", wantReason: rejectContentType},
		{name: "too large", method: http.MethodPost, contentType: "application/json", body: `{"x":"` + strings.Repeat("a", 5000) + `"}`,
			wantCode: 413, wantBody: "body exceeds 4096 bytes", wantReason: rejectTooLarge},
		{name: "not JSON", method: http.MethodPost, contentType: "application/json", body: `{"apiVersion":`,
			wantCode: 400, wantBody: "decode AdmissionReview: unexpected end of JSON input", wantReason: rejectMalformed},
		{name: "empty body", method: http.MethodPost, contentType: "application/json; charset=utf-8", body: ``,
			wantCode: 400, wantBody: "decode AdmissionReview: unexpected end of JSON input", wantReason: rejectMalformed},
		{name: "v1beta1 review", method: http.MethodPost, contentType: "application/json",
			body:     strings.Replace(reviewJSON("u", "CREATE", plainPod), "admission.k8s.io/v1", "admission.k8s.io/v1beta1", 1),
			wantCode: 400, wantBody: `decode AdmissionReview: apiVersion/kind "admission.k8s.io/v1beta1"/"AdmissionReview", want "admission.k8s.io/v1"/"AdmissionReview" (admissionReviewVersions must be [v1])`,
			wantReason: rejectMalformed},
		{name: "no request", method: http.MethodPost, contentType: "application/json",
			body:     `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}`,
			wantCode: 400, wantBody: "decode AdmissionReview: missing request or request.uid", wantReason: rejectMalformed},
		{name: "no uid", method: http.MethodPost, contentType: "application/json",
			body:     reviewJSON("", "CREATE", plainPod),
			wantCode: 400, wantBody: "decode AdmissionReview: missing request or request.uid", wantReason: rejectMalformed},
		{name: "request is a string", method: http.MethodPost, contentType: "application/json",
			body:     `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":"x"}`,
			wantCode: 400, wantBody: "decode AdmissionReview: json: cannot unmarshal string into Go struct field AdmissionReview.request of type v1.AdmissionRequest", wantReason: rejectMalformed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, _, url := newTestServer(t, cfg)
			req, err := http.NewRequest(tc.method, url+"/mutate", strings.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			if tc.contentType != "" {
				req.Header.Set("Content-Type", tc.contentType)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.wantCode {
				t.Errorf("status %d, want %d", resp.StatusCode, tc.wantCode)
			}
			if got := strings.TrimSpace(string(body)); got != tc.wantBody {
				t.Errorf("body %q\nwant %q", got, tc.wantBody)
			}
			if got := testutil.ToFloat64(s.metrics.rejected.WithLabelValues(tc.wantReason)); got != 1 {
				t.Errorf("rejected{reason=%s} = %v, want 1", tc.wantReason, got)
			}
			if got := testutil.CollectAndCount(s.metrics.pods); got != 3 {
				t.Errorf("pods series %d, want the 3 pre-created", got)
			}
			for _, r := range []string{resultMutated, resultSkipped, resultError} {
				if v := testutil.ToFloat64(s.metrics.pods.WithLabelValues(r)); v != 0 {
					t.Errorf("pods{result=%s} = %v, want 0: a rejected request is not a pod review", r, v)
				}
			}
		})
	}
}

// A review that decodes but whose pod does not gets a 200 and an
// AdmissionResponse shaped by failure_policy.
func TestMutateBadPodFollowsFailurePolicy(t *testing.T) {
	const wantMsg = "egressd-inject: proxy settings not injected: inject: decode pod: json: cannot unmarshal string into Go struct field PodSpec.spec.containers of type []v1.Container"
	badPod := `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"web","labels":{"network":"filtered"}},"spec":{"containers":"app"}}`
	cases := []struct {
		name        string
		policy      string
		wantAllowed bool
		wantCode    int32
		wantWarning string
	}{
		{name: "Fail denies with the reason", policy: FailurePolicyFail, wantAllowed: false, wantCode: 400},
		{name: "Ignore admits unchanged with a warning", policy: FailurePolicyIgnore, wantAllowed: true, wantWarning: wantMsg},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig()
			cfg.FailurePolicy = tc.policy
			s, _, url := newTestServer(t, cfg)
			code, review := postReview(t, http.DefaultClient, url, reviewJSON("uid-bad", "CREATE", badPod))
			if code != http.StatusOK {
				t.Fatalf("status %d, want 200", code)
			}
			r := review.Response
			if r == nil || r.UID != "uid-bad" || r.Allowed != tc.wantAllowed || r.Patch != nil {
				t.Fatalf("response %+v: want uid-bad, allowed=%v, no patch", r, tc.wantAllowed)
			}
			if tc.wantAllowed {
				if len(r.Warnings) != 1 || r.Warnings[0] != tc.wantWarning {
					t.Errorf("warnings %q, want [%q]", r.Warnings, tc.wantWarning)
				}
			} else if r.Result == nil || r.Result.Code != tc.wantCode || r.Result.Message != wantMsg || r.Result.Status != "Failure" {
				t.Errorf("result %+v, want code %d message %q", r.Result, tc.wantCode, wantMsg)
			}
			if got := testutil.ToFloat64(s.metrics.pods.WithLabelValues(resultError)); got != 1 {
				t.Errorf("pods{result=error} = %v, want 1", got)
			}
		})
	}
}

func TestMutateOnlyPodCreate(t *testing.T) {
	cases := []struct {
		name   string
		review string
	}{
		{name: "UPDATE", review: reviewJSON("u1", "UPDATE", plainPod)},
		{name: "DELETE", review: reviewJSON("u2", "DELETE", plainPod)},
		{name: "subresource", review: strings.Replace(reviewJSON("u3", "CREATE", plainPod), `"namespace"`, `"subResource":"ephemeralcontainers","namespace"`, 1)},
		{name: "deployments", review: strings.Replace(reviewJSON("u4", "CREATE", plainPod), `"resource": "pods"}`, `"resource": "deployments"}`, 1)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, _, url := newTestServer(t, testConfig())
			code, review := postReview(t, http.DefaultClient, url, tc.review)
			if code != http.StatusOK || review.Response == nil || !review.Response.Allowed || review.Response.Patch != nil {
				t.Fatalf("status %d response %+v: want allowed with no patch", code, review.Response)
			}
			if got := testutil.ToFloat64(s.metrics.pods.WithLabelValues(resultSkipped)); got != 1 {
				t.Errorf("pods{result=skipped} = %v, want 1", got)
			}
		})
	}
}

func TestMetricsCountReviews(t *testing.T) {
	_, reg, url := newTestServer(t, testConfig())
	unlabelled := strings.Replace(plainPod, `"network":"filtered"`, `"app":"web"`, 1)
	for i, pod := range []string{plainPod, plainPod, unlabelled} {
		if code, _ := postReview(t, http.DefaultClient, url, reviewJSON("u"+string(rune('a'+i)), "CREATE", pod)); code != 200 {
			t.Fatalf("review %d: status %d", i, code)
		}
	}
	want := `
# HELP egressd_inject_pods_total Pod admission reviews by result: mutated (a patch was returned), skipped (not selected, opted out or already injected) or error.
# TYPE egressd_inject_pods_total counter
egressd_inject_pods_total{result="error"} 0
egressd_inject_pods_total{result="mutated"} 2
egressd_inject_pods_total{result="skipped"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "egressd_inject_pods_total"); err != nil {
		t.Error(err)
	}
	if got := histogramCount(t, reg, "egressd_inject_review_duration_seconds"); got != 3 {
		t.Errorf("review duration observations %d, want 3", got)
	}
	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint %s: %s", p.Metric, p.Text)
	}
}

func TestHealthz(t *testing.T) {
	s, _, url := newTestServer(t, testConfig())
	get := func() int {
		resp, err := http.Get(url + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := get(); got != 200 {
		t.Errorf("healthz %d, want 200", got)
	}
	s.draining.Store(true)
	if got := get(); got != 503 {
		t.Errorf("healthz while draining %d, want 503", got)
	}
}

func histogramCount(t *testing.T, g prometheus.Gatherer, name string) uint64 {
	t.Helper()
	families, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() == name && len(f.GetMetric()) == 1 {
			return f.GetMetric()[0].GetHistogram().GetSampleCount()
		}
	}
	t.Fatalf("histogram %s not found", name)
	return 0
}
