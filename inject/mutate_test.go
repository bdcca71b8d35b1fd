package inject

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
)

// The CA volume exactly as the webhook writes it.
const caVolumeJSON = `{"name":"egressd-inject-ca","configMap":{"name":"egressd-ca-bundle","items":[{"key":"ca-bundle.crt","path":"ca-bundle.crt"}],"defaultMode":292,"optional":false}}`

func TestMutatePodShapes(t *testing.T) {
	override := testConfig()
	override.Override = true
	noCA := testConfig()
	noCA.CA.ConfigMap = ""

	cases := []struct {
		name string
		cfg  Config
		pod  string
		// wantPatch false means the response must carry no patch.
		wantPatch bool
		// wantEnv is every container's env after the patch, by name.
		wantEnv map[string][]string
		// wantMounts is every container's volumeMount names, by name.
		wantMounts map[string][]string
		// wantVolumes are the pod's volumes as JSON, in order.
		wantVolumes []string
		// wantStatus is the egressd.io/inject-status value; "" means absent.
		wantStatus string
		// wantAnnotations must be present with these values (other keys kept).
		wantAnnotations map[string]string
		wantWarnings    []string
	}{
		{
			name: "no env, no volumes, no annotations",
			cfg:  testConfig(),
			pod: `{"apiVersion":"v1","kind":"Pod","metadata":{"generateName":"web-7d9c-","namespace":"shop","labels":{"network":"filtered"}},
				"spec":{"containers":[{"name":"app","image":"shop:1"}]}}`,
			wantPatch:   true,
			wantEnv:     map[string][]string{"app": injectedEnv(true)},
			wantMounts:  map[string][]string{"app": {"egressd-inject-ca"}},
			wantVolumes: []string{caVolumeJSON},
			wantStatus:  `{"proxy":"http://10.2.128.100:3128","ca":"egressd-ca-bundle/ca-bundle.crt","containers":["app"]}`,
		},
		{
			name: "existing env, volumes and annotations are kept and appended to",
			cfg:  testConfig(),
			pod: `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"web","labels":{"network":"filtered","app":"web"},
				"annotations":{"example.com/owner~team":"payments"}},
				"spec":{"volumes":[{"name":"data","emptyDir":{}}],
				"containers":[{"name":"app","image":"shop:1","env":[{"name":"MODE","value":"prod"}],
				"volumeMounts":[{"name":"data","mountPath":"/data"}]}]}}`,
			wantPatch:       true,
			wantEnv:         map[string][]string{"app": concat([]string{"MODE=prod"}, injectedEnv(true))},
			wantMounts:      map[string][]string{"app": {"data", "egressd-inject-ca"}},
			wantVolumes:     []string{`{"name":"data","emptyDir":{}}`, caVolumeJSON},
			wantStatus:      `{"proxy":"http://10.2.128.100:3128","ca":"egressd-ca-bundle/ca-bundle.crt","containers":["app"]}`,
			wantAnnotations: map[string]string{"example.com/owner~team": "payments"},
		},
		{
			name: "init container and two containers all get the settings",
			cfg:  testConfig(),
			pod: `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"web","labels":{"network":"filtered"}},
				"spec":{"initContainers":[{"name":"migrate","image":"shop:1"}],
				"containers":[{"name":"app","image":"shop:1"},{"name":"sidecar","image":"log:1","env":[{"name":"A","value":"1"}]}]}}`,
			wantPatch: true,
			wantEnv: map[string][]string{
				"migrate": injectedEnv(true),
				"app":     injectedEnv(true),
				"sidecar": concat([]string{"A=1"}, injectedEnv(true)),
			},
			wantMounts:  map[string][]string{"migrate": {"egressd-inject-ca"}, "app": {"egressd-inject-ca"}, "sidecar": {"egressd-inject-ca"}},
			wantVolumes: []string{caVolumeJSON},
			wantStatus:  `{"proxy":"http://10.2.128.100:3128","ca":"egressd-ca-bundle/ca-bundle.crt","containers":["migrate","app","sidecar"]}`,
		},
		{
			name: "explicit HTTPS_PROXY keeps its whole group, other groups are added",
			cfg:  testConfig(),
			pod: `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"web","labels":{"network":"filtered"}},
				"spec":{"containers":[{"name":"app","image":"shop:1","env":[{"name":"HTTPS_PROXY","value":"http://other:8080"}]}]}}`,
			wantPatch: true,
			wantEnv: map[string][]string{"app": {
				"HTTPS_PROXY=http://other:8080",
				"HTTP_PROXY=" + testProxy, "http_proxy=" + testProxy,
				"NO_PROXY=" + testNoProxy, "no_proxy=" + testNoProxy, "NODE_USE_ENV_PROXY=1",
				"SSL_CERT_FILE=" + testCAFile, "NODE_EXTRA_CA_CERTS=" + testCAFile, "REQUESTS_CA_BUNDLE=" + testCAFile,
			}},
			wantMounts:  map[string][]string{"app": {"egressd-inject-ca"}},
			wantVolumes: []string{caVolumeJSON},
			wantStatus:  `{"proxy":"http://10.2.128.100:3128","ca":"egressd-ca-bundle/ca-bundle.crt","containers":["app"],"explicit":["app:HTTPS_PROXY"]}`,
		},
		{
			name: "no_proxy from a ConfigMap and an explicit SSL_CERT_FILE are explicit too",
			cfg:  testConfig(),
			pod: `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"web","labels":{"network":"filtered"}},
				"spec":{"containers":[{"name":"app","image":"shop:1","env":[
				{"name":"no_proxy","valueFrom":{"configMapKeyRef":{"name":"net","key":"no_proxy"}}},
				{"name":"SSL_CERT_FILE","value":"/etc/ssl/mine.pem"}]}]}}`,
			wantPatch: true,
			wantEnv: map[string][]string{"app": {
				"no_proxy<-from", "SSL_CERT_FILE=/etc/ssl/mine.pem",
				"HTTP_PROXY=" + testProxy, "http_proxy=" + testProxy,
				"HTTPS_PROXY=" + testProxy, "https_proxy=" + testProxy, "NODE_USE_ENV_PROXY=1",
				"NODE_EXTRA_CA_CERTS=" + testCAFile, "REQUESTS_CA_BUNDLE=" + testCAFile,
			}},
			wantMounts:  map[string][]string{"app": {"egressd-inject-ca"}},
			wantVolumes: []string{caVolumeJSON},
			wantStatus:  `{"proxy":"http://10.2.128.100:3128","ca":"egressd-ca-bundle/ca-bundle.crt","containers":["app"],"explicit":["app:no_proxy","app:SSL_CERT_FILE"]}`,
		},
		{
			name: "an explicit value equal to the injected one gets its twin",
			cfg:  noCA,
			pod: `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"web","labels":{"network":"filtered"}},
				"spec":{"containers":[{"name":"app","image":"shop:1","env":[{"name":"http_proxy","value":"http://10.2.128.100:3128"}]}]}}`,
			wantPatch: true,
			wantEnv: map[string][]string{"app": {
				"http_proxy=" + testProxy, "HTTP_PROXY=" + testProxy,
				"HTTPS_PROXY=" + testProxy, "https_proxy=" + testProxy,
				"NO_PROXY=" + testNoProxy, "no_proxy=" + testNoProxy, "NODE_USE_ENV_PROXY=1",
			}},
			wantMounts: map[string][]string{"app": nil},
			wantStatus: `{"proxy":"http://10.2.128.100:3128","containers":["app"]}`,
		},
		{
			name: "override replaces explicit values in place, valueFrom included",
			cfg:  override,
			pod: `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"web","labels":{"network":"filtered"}},
				"spec":{"containers":[{"name":"app","image":"shop:1","env":[
				{"name":"HTTP_PROXY","value":"http://old:1"},
				{"name":"NO_PROXY","valueFrom":{"configMapKeyRef":{"name":"net","key":"no_proxy"}}},
				{"name":"KEEP","value":"x"}]}]}}`,
			wantPatch: true,
			wantEnv: map[string][]string{"app": concat(
				[]string{"HTTP_PROXY=" + testProxy, "NO_PROXY=" + testNoProxy, "KEEP=x"},
				[]string{"http_proxy=" + testProxy, "HTTPS_PROXY=" + testProxy, "https_proxy=" + testProxy, "no_proxy=" + testNoProxy, "NODE_USE_ENV_PROXY=1"},
				[]string{"SSL_CERT_FILE=" + testCAFile, "NODE_EXTRA_CA_CERTS=" + testCAFile, "REQUESTS_CA_BUNDLE=" + testCAFile},
			)},
			wantMounts:  map[string][]string{"app": {"egressd-inject-ca"}},
			wantVolumes: []string{caVolumeJSON},
			wantStatus:  `{"proxy":"http://10.2.128.100:3128","ca":"egressd-ca-bundle/ca-bundle.crt","containers":["app"]}`,
		},
		{
			name: "a different volume with the reserved name is replaced, not duplicated",
			cfg:  testConfig(),
			pod: `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"web","labels":{"network":"filtered"}},
				"spec":{"volumes":[{"name":"cache","emptyDir":{}},{"name":"egressd-inject-ca","emptyDir":{}}],
				"containers":[{"name":"app","image":"shop:1","volumeMounts":[{"name":"egressd-inject-ca","mountPath":"/old"}]}]}}`,
			wantPatch:   true,
			wantEnv:     map[string][]string{"app": injectedEnv(true)},
			wantMounts:  map[string][]string{"app": {"egressd-inject-ca"}},
			wantVolumes: []string{`{"name":"cache","emptyDir":{}}`, caVolumeJSON},
			wantStatus:  `{"proxy":"http://10.2.128.100:3128","ca":"egressd-ca-bundle/ca-bundle.crt","containers":["app"]}`,
		},
		{
			name: "a container that owns the CA path keeps it and gets no CA variables",
			cfg:  testConfig(),
			pod: `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"web","labels":{"network":"filtered"}},
				"spec":{"volumes":[{"name":"mine","secret":{"secretName":"my-ca"}}],
				"containers":[{"name":"app","image":"shop:1","volumeMounts":[{"name":"mine","mountPath":"/etc/egressd/ca/"}]},
				{"name":"sidecar","image":"log:1"}]}}`,
			wantPatch: true,
			wantEnv: map[string][]string{
				"app":     injectedEnv(false),
				"sidecar": injectedEnv(true),
			},
			wantMounts:  map[string][]string{"app": {"mine"}, "sidecar": {"egressd-inject-ca"}},
			wantVolumes: []string{`{"name":"mine","secret":{"secretName":"my-ca"}}`, caVolumeJSON},
			wantStatus:  `{"proxy":"http://10.2.128.100:3128","ca":"egressd-ca-bundle/ca-bundle.crt","containers":["app","sidecar"],"explicit":["app:ca-mount"]}`,
		},
		{
			name: "CA disabled: proxy variables only, no volume",
			cfg:  noCA,
			pod: `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"web","labels":{"network":"filtered"}},
				"spec":{"containers":[{"name":"app","image":"shop:1"}]}}`,
			wantPatch:  true,
			wantEnv:    map[string][]string{"app": injectedEnv(false)},
			wantMounts: map[string][]string{"app": nil},
			wantStatus: `{"proxy":"http://10.2.128.100:3128","containers":["app"]}`,
		},
		{
			name: "unlabelled pod is left alone",
			cfg:  testConfig(),
			pod: `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"web","labels":{"app":"web"}},
				"spec":{"containers":[{"name":"app","image":"shop:1"}]}}`,
			wantEnv:    map[string][]string{"app": {}},
			wantMounts: map[string][]string{"app": nil},
		},
		{
			name: "label with another value is left alone",
			cfg:  testConfig(),
			pod: `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"web","labels":{"network":"open"}},
				"spec":{"containers":[{"name":"app","image":"shop:1"}]}}`,
			wantEnv:    map[string][]string{"app": {}},
			wantMounts: map[string][]string{"app": nil},
		},
		{
			name: "opt-out annotation is honoured",
			cfg:  testConfig(),
			pod: `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"web","labels":{"network":"filtered"},"annotations":{"egressd.io/inject":"false"}},
				"spec":{"containers":[{"name":"app","image":"shop:1"}]}}`,
			wantEnv:         map[string][]string{"app": {}},
			wantMounts:      map[string][]string{"app": nil},
			wantAnnotations: map[string]string{"egressd.io/inject": "false"},
		},
		{
			name: "unparsable opt-out annotation injects and warns",
			cfg:  noCA,
			pod: `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"web","labels":{"network":"filtered"},"annotations":{"egressd.io/inject":"nope"}},
				"spec":{"containers":[{"name":"app","image":"shop:1"}]}}`,
			wantPatch:       true,
			wantEnv:         map[string][]string{"app": injectedEnv(false)},
			wantMounts:      map[string][]string{"app": nil},
			wantStatus:      `{"proxy":"http://10.2.128.100:3128","containers":["app"]}`,
			wantAnnotations: map[string]string{"egressd.io/inject": "nope"},
			wantWarnings:    []string{`annotation egressd.io/inject="nope" is not a boolean; injecting anyway`},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, _, url := newTestServer(t, tc.cfg)
			code, review := postReview(t, http.DefaultClient, url, reviewJSON("uid-1", "CREATE", tc.pod))
			if code != http.StatusOK {
				t.Fatalf("status %d, want 200", code)
			}
			resp := review.Response
			if resp == nil || resp.UID != "uid-1" || !resp.Allowed {
				t.Fatalf("response %+v: want allowed with uid-1", resp)
			}
			if review.APIVersion != "admission.k8s.io/v1" || review.Kind != "AdmissionReview" {
				t.Errorf("response type %s/%s", review.APIVersion, review.Kind)
			}
			if !slices.Equal(resp.Warnings, tc.wantWarnings) {
				t.Errorf("warnings %q, want %q", resp.Warnings, tc.wantWarnings)
			}
			patched := tc.pod
			if tc.wantPatch {
				if resp.PatchType == nil || *resp.PatchType != admissionv1.PatchTypeJSONPatch || len(resp.Patch) == 0 {
					t.Fatalf("want a JSONPatch, got type %v patch %q", resp.PatchType, resp.Patch)
				}
				patched = applyPatch(t, tc.pod, resp.Patch)
			} else if resp.Patch != nil || resp.PatchType != nil {
				t.Fatalf("want no patch, got %s", resp.Patch)
			}

			pod := decodePodStrict(t, patched)
			for _, c := range slices.Concat(pod.Spec.InitContainers, pod.Spec.Containers) {
				if got := envList(c); !slices.Equal(got, tc.wantEnv[c.Name]) {
					t.Errorf("container %s env:\n got %q\nwant %q", c.Name, got, tc.wantEnv[c.Name])
				}
				var mounts []string
				for _, m := range c.VolumeMounts {
					mounts = append(mounts, m.Name)
					if m.Name == "egressd-inject-ca" && (m.MountPath != "/etc/egressd/ca" || !m.ReadOnly) {
						t.Errorf("container %s CA mount %+v: want /etc/egressd/ca read-only", c.Name, m)
					}
				}
				if !slices.Equal(mounts, tc.wantMounts[c.Name]) {
					t.Errorf("container %s mounts %q, want %q", c.Name, mounts, tc.wantMounts[c.Name])
				}
			}
			var volumes []string
			for _, v := range pod.Spec.Volumes {
				b, _ := json.Marshal(v)
				volumes = append(volumes, string(b))
			}
			if !slices.Equal(volumes, tc.wantVolumes) {
				t.Errorf("volumes:\n got %q\nwant %q", volumes, tc.wantVolumes)
			}
			if got := pod.Annotations[AnnotationStatus]; got != tc.wantStatus {
				t.Errorf("status annotation:\n got %s\nwant %s", got, tc.wantStatus)
			}
			for k, v := range tc.wantAnnotations {
				if pod.Annotations[k] != v {
					t.Errorf("annotation %s=%q, want %q", k, pod.Annotations[k], v)
				}
			}

			// Re-invocation (reinvocationPolicy: IfNeeded) must find nothing to do.
			_, again := postReview(t, http.DefaultClient, url, reviewJSON("uid-2", "CREATE", patched))
			if again.Response == nil || !again.Response.Allowed || again.Response.Patch != nil {
				t.Errorf("second pass: want allowed with no patch, got %+v (patch %s)", again.Response, again.Response.Patch)
			}
		})
	}
}

// The API server defaults the object between webhook calls; a defaulted
// copy of the injected volume and mount must still count as injected.
func TestMutateIdempotentAfterDefaulting(t *testing.T) {
	m := newMutator(testConfig())
	pod := corev1.Pod{}
	pod.Labels = map[string]string{"network": "filtered"}
	pod.Spec.Containers = []corev1.Container{{Name: "app"}}
	first, err := m.mutate(&pod)
	if err != nil || len(first.ops) == 0 {
		t.Fatalf("first pass: ops %d err %v", len(first.ops), err)
	}
	raw, _ := json.Marshal(pod)
	patch, _ := json.Marshal(first.ops)
	injected := decodePodStrict(t, applyPatch(t, string(raw), patch))

	// What defaulting fills in: item modes stay nil, recursiveReadOnly and
	// mountPropagation get explicit values on newer API servers.
	disabled := corev1.RecursiveReadOnlyDisabled
	none := corev1.MountPropagationNone
	injected.Spec.Containers[0].VolumeMounts[0].RecursiveReadOnly = &disabled
	injected.Spec.Containers[0].VolumeMounts[0].MountPropagation = &none
	injected.Spec.Containers[0].TerminationMessagePath = "/dev/termination-log"

	second, err := m.mutate(&injected)
	if err != nil {
		t.Fatalf("second pass: %v", err)
	}
	if len(second.ops) != 0 || second.skip != skipUnchanged {
		t.Fatalf("second pass: ops %+v skip %q, want none and %q", second.ops, second.skip, skipUnchanged)
	}
}

func TestBuildNoProxy(t *testing.T) {
	off := false
	cases := []struct {
		name string
		cfg  NoProxyConfig
		want string
	}{
		{name: "test config", cfg: testConfig().NoProxy, want: testNoProxy},
		{
			name: "defaults only",
			cfg:  DefaultConfig().NoProxy,
			want: "localhost,127.0.0.1,::1,.cluster.local,.svc,kubernetes.default,kubernetes.default.svc,169.254.169.254",
		},
		{
			name: "imds off, custom domain, duplicates dropped, fqdn lower-cased",
			cfg: NoProxyConfig{ClusterDomain: "corp.internal", IMDS: &off, APIServerFQDN: "AKS.example.com",
				ServiceCIDRs: []string{"fd00::/108"}, Extra: []string{"localhost", ".svc", "internal.example"}},
			want: "localhost,127.0.0.1,::1,fd00::/108,.corp.internal,.svc,kubernetes.default,kubernetes.default.svc,aks.example.com,internal.example",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := buildNoProxy(tc.cfg); got != tc.want {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
}

func TestEscapePointer(t *testing.T) {
	cases := []struct {
		name, in, want string
	}{
		{name: "slash", in: "egressd.io/inject-status", want: "egressd.io~1inject-status"},
		{name: "tilde", in: "a~b", want: "a~0b"},
		{name: "tilde before one", in: "a~1/b", want: "a~01~1b"},
		{name: "plain", in: "plain", want: "plain"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := escapePointer(tc.in); got != tc.want {
				t.Errorf("escapePointer(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

// Credentials in the proxy URL reach the env (that is their purpose) but
// never the annotation, which more tooling displays.
func TestStatusRedactsProxyPassword(t *testing.T) {
	cfg := testConfig()
	cfg.Proxy.HTTPProxy = "http://shop:s3cret@10.2.128.100:3128"
	cfg.Proxy.HTTPSProxy = cfg.Proxy.HTTPProxy
	m := newMutator(cfg)
	pod := corev1.Pod{}
	pod.Labels = map[string]string{"network": "filtered"}
	pod.Spec.Containers = []corev1.Container{{Name: "app"}}
	out, err := m.mutate(&pod)
	if err != nil {
		t.Fatal(err)
	}
	ops, _ := json.Marshal(out.ops)
	if !strings.Contains(string(ops), `"value":"http://shop:s3cret@10.2.128.100:3128"`) {
		t.Errorf("env does not carry the configured URL: %s", ops)
	}
	status := out.ops[len(out.ops)-1]
	if status.Path != "/metadata/annotations" {
		t.Fatalf("last op %+v, want the annotation", status)
	}
	got := status.Value.(map[string]string)[AnnotationStatus]
	if strings.Contains(got, "s3cret") || !strings.Contains(got, `"proxy":"http://shop:xxxxx@10.2.128.100:3128"`) {
		t.Errorf("status annotation %s: want the password redacted", got)
	}
}
