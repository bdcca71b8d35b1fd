package deploycheck

import (
	"slices"
	"strings"
	"testing"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// Helpers that reach into a cloned webhook-route set to break one thing.

func editInjectConfig(t *testing.T, s *Set, old, new string) {
	t.Helper()
	_, cm, err := injectConfig(s)
	if cm == nil {
		t.Fatal(err)
	}
	if !strings.Contains(cm.Data["config.yaml"], old) {
		t.Fatalf("inject config.yaml has no %q to replace", old)
	}
	cm.Data["config.yaml"] = strings.Replace(cm.Data["config.yaml"], old, new, 1)
}

func webhookOf(t *testing.T, s *Set) *admissionregistrationv1.MutatingWebhook {
	t.Helper()
	_, wh, err := mutatingWebhook(s)
	if err != nil {
		t.Fatal(err)
	}
	return wh
}

func exampleDeployment(t *testing.T, s *Set) *appsv1.Deployment {
	t.Helper()
	for _, d := range typedOf[*appsv1.Deployment](s) {
		if d.Name == "egress-example" {
			return d
		}
	}
	t.Fatal("no Deployment egress-example")
	return nil
}

func TestChecksCatchBrokenWebhookRouteSets(t *testing.T) {
	wl := render(t, dirWorkload)
	tests := []breakCase{
		{
			name:  "https_proxy names another address",
			check: checkInjectConfig,
			breakIt: func(t *testing.T, s *Set) {
				editInjectConfig(t, s, "  http_proxy: http://10.2.128.100:3128\n", "  http_proxy: http://10.2.128.100:3128\n  https_proxy: http://10.2.128.101:3128\n")
			},
			wantErr: `injects HTTPS_PROXY="http://10.2.128.101:3128" but HTTP_PROXY="http://10.2.128.100:3128"`,
		},
		{
			name:  "IMDS left out of NO_PROXY",
			check: checkInjectConfig,
			breakIt: func(t *testing.T, s *Set) {
				editInjectConfig(t, s, "imds: true", "imds: false")
			},
			wantErr: "injected NO_PROXY lacks 169.254.169.254",
		},
		{
			name:  "typo in the webhook config",
			check: checkInjectConfig,
			breakIt: func(t *testing.T, s *Set) {
				editInjectConfig(t, s, "selector:", "selektor:")
			},
			wantErr: "field selektor not found in type inject.Config",
		},
		{
			name:  "objectSelector differs from the config selector",
			check: checkWebhookConfiguration,
			breakIt: func(t *testing.T, s *Set) {
				webhookOf(t, s).ObjectSelector.MatchLabels = map[string]string{"network": "proxied"}
			},
			wantErr: "objectSelector network=proxied, config selector map[network:filtered]: they must be equal",
		},
		{
			name:  "failurePolicy differs from failure_policy",
			check: checkWebhookConfiguration,
			breakIt: func(t *testing.T, s *Set) {
				webhookOf(t, s).FailurePolicy = ptr(admissionregistrationv1.Ignore)
			},
			wantErr: "failurePolicy Ignore, config failure_policy Fail",
		},
		{
			name:  "namespaceSelector unset, so the webhook's own pods wait on it",
			check: checkWebhookConfiguration,
			breakIt: func(t *testing.T, s *Set) {
				webhookOf(t, s).NamespaceSelector = nil
			},
			wantErr: "namespaceSelector <none> admits the webhook's own namespace egressd-inject",
		},
		{
			name:  "Service port 443 targets the metrics port",
			check: checkWebhookConfiguration,
			breakIt: func(t *testing.T, s *Set) {
				for _, svc := range typedOf[*corev1.Service](s) {
					if svc.Name == "egressd-inject" {
						svc.Spec.Ports[0].TargetPort = intstr.FromString("metrics")
					}
				}
			},
			wantErr: "service egressd-inject port 443 targets metrics, which is not the webhook's listen port 8443",
		},
		{
			name:  "webhook Deployment mounts another config",
			check: checkWebhookConfiguration,
			breakIt: func(t *testing.T, s *Set) {
				d, _, err := injectDeployment(s)
				if err != nil {
					t.Fatal(err)
				}
				for _, v := range d.Spec.Template.Spec.Volumes {
					if v.ConfigMap != nil {
						v.ConfigMap.Name = "egressd-inject-config-old"
					}
				}
			},
			wantErr: "deployment egressd-inject mounts no ConfigMap egressd-inject-config-",
		},
		{
			name:  "NetworkPolicy names another IP than the webhook config",
			check: checkForceProxyEgress,
			breakIt: func(t *testing.T, s *Set) {
				policy(t, s, ForceProxyPolicy).Spec.Egress[0].To[0].IPBlock.CIDR = "10.2.128.101/32"
			},
			wantErr: "egress[0]: ipBlock 10.2.128.101/32: only the private endpoint 10.2.128.100/32 from egressd-inject-config proxy.http_proxy",
		},
		{
			name:  "NetworkPolicy in another namespace than the workload",
			check: checkForceProxyEgress,
			breakIt: func(t *testing.T, s *Set) {
				policy(t, s, ForceProxyPolicy).Namespace = "shop"
			},
			wantErr: `NetworkPolicy force-proxy-egress is in namespace "shop" but Deployment egress-example runs in "demo"`,
		},
		{
			name:  "webhook selects a label the workload lacks",
			check: checkWebhookWorkloads,
			breakIt: func(t *testing.T, s *Set) {
				webhookOf(t, s).ObjectSelector.MatchLabels["team"] = "a"
			},
			wantErr: "Deployment demo/egress-example: pod labels map[app.kubernetes.io/name:egress-example network:filtered] do not match the webhook's objectSelector network=filtered,team=a",
		},
		{
			name:  "workload namespace excluded from the webhook",
			check: checkWebhookWorkloads,
			breakIt: func(t *testing.T, s *Set) {
				e := &webhookOf(t, s).NamespaceSelector.MatchExpressions[0]
				e.Values = append(e.Values, "demo")
			},
			wantErr: "Deployment demo/egress-example: namespace demo is excluded by the webhook's namespaceSelector",
		},
		{
			name:  "workload sets its own proxy",
			check: checkWebhookWorkloads,
			breakIt: func(t *testing.T, s *Set) {
				c := &exampleDeployment(t, s).Spec.Template.Spec.Containers[0]
				c.Env = append(c.Env, corev1.EnvVar{Name: "HTTPS_PROXY", Value: "http://10.2.128.100:3128"})
			},
			wantErr: "Deployment demo/egress-example container app sets HTTPS_PROXY itself: the webhook leaves explicit settings alone",
		},
		{
			name:  "workload also uses the static route",
			check: checkWebhookWorkloads,
			breakIt: func(t *testing.T, s *Set) {
				c := &exampleDeployment(t, s).Spec.Template.Spec.Containers[0]
				c.EnvFrom = append(c.EnvFrom, corev1.EnvFromSource{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: ProxyEnvConfigMap}}})
			},
			wantErr: "container app takes envFrom egressd-proxy-env, the static route's ConfigMap",
		},
		{
			name:  "CA bundle ConfigMap missing from the namespace",
			check: checkWebhookWorkloads,
			breakIt: func(t *testing.T, s *Set) {
				s.Objects = slices.DeleteFunc(s.Objects, func(o Object) bool { return o.Kind == "ConfigMap" && o.Name == "egressd-ca-bundle" })
			},
			wantErr: "Deployment demo/egress-example: ConfigMap egressd-ca-bundle (ca.config_map) is not in namespace demo",
		},
		{
			name:  "workload opted out of injection",
			check: checkInjectedPods,
			breakIt: func(t *testing.T, s *Set) {
				exampleDeployment(t, s).Spec.Template.Annotations = map[string]string{"egressd.io/inject": "false"}
			},
			wantErr: `deployment egress-example container app after injection: HTTP_PROXY="", want http://10.2.128.100:3128 (egressd-inject-config proxy.http_proxy)`,
		},
		{
			name:  "CA bundle under another key",
			check: checkInjectedPods,
			breakIt: func(t *testing.T, s *Set) {
				cm, ok := configMapIn(s, "demo", "egressd-ca-bundle")
				if !ok {
					t.Fatal("no egressd-ca-bundle")
				}
				cm.Data = map[string]string{"ca.crt": cm.Data["ca-bundle.crt"]}
			},
			wantErr: "container app after injection: SSL_CERT_FILE=/etc/egressd/ca/ca-bundle.crt: ConfigMap egressd-ca-bundle has no key ca-bundle.crt",
		},
		{
			name:  "container owns the CA mount path, so it gets no CA",
			check: checkInjectedPods,
			breakIt: func(t *testing.T, s *Set) {
				ps := &exampleDeployment(t, s).Spec.Template.Spec
				ps.Volumes = append(ps.Volumes, corev1.Volume{Name: "own-ca", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}})
				ps.Containers[0].VolumeMounts = append(ps.Containers[0].VolumeMounts, corev1.VolumeMount{Name: "own-ca", MountPath: "/etc/egressd/ca"})
			},
			wantErr: "container app after injection: SSL_CERT_FILE is not set",
		},
	}
	runBreakCases(t, wl, tests)
}

func TestCheckRoutesAgree(t *testing.T) {
	webhook, static := render(t, dirWorkload), render(t, dirStatic)
	setBoth := func(cm *corev1.ConfigMap, upper, value string) {
		cm.Data[upper], cm.Data[strings.ToLower(upper)] = value, value
	}
	tests := []struct {
		name    string
		breakIt func(t *testing.T, webhook, static *Set)
		wantErr string // "" means the routes still agree
	}{
		{
			name: "static route back on the broad private ranges",
			breakIt: func(t *testing.T, _, static *Set) {
				cm, _ := configMap(static, ProxyEnvConfigMap)
				setBoth(cm, "NO_PROXY", "localhost,127.0.0.1,::1,10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,.cluster.local,.svc,kubernetes.default,kubernetes.default.svc,169.254.169.254,.hcp.westeurope.azmk8s.io")
			},
			wantErr: "NO_PROXY differs: only in ConfigMap egressd-proxy-env: [10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,.hcp.westeurope.azmk8s.io]; " +
				"only injected by the webhook (egressd-inject-config no_proxy): [10.0.0.0/16,10.244.0.0/16,myaks-dns-00000000.hcp.westeurope.azmk8s.io]",
		},
		{
			name: "an extra entry only in the webhook config",
			breakIt: func(t *testing.T, webhook, _ *Set) {
				editInjectConfig(t, webhook, "extra: []", "extra: [.corp.example]")
			},
			wantErr: "only in ConfigMap egressd-proxy-env: []; only injected by the webhook (egressd-inject-config no_proxy): [.corp.example]",
		},
		{
			name: "webhook moved to another private endpoint",
			breakIt: func(t *testing.T, webhook, _ *Set) {
				editInjectConfig(t, webhook, "http_proxy: http://10.2.128.100:3128", "http_proxy: http://10.2.129.7:3128")
			},
			wantErr: `HTTP_PROXY: the webhook injects "http://10.2.129.7:3128", ConfigMap egressd-proxy-env has "http://10.2.128.100:3128"`,
		},
		{
			// Clients test every entry and host names ignore case:
			// neither order, case nor a trailing slash is a disagreement.
			name: "same entries in another order and case",
			breakIt: func(t *testing.T, _, static *Set) {
				cm, _ := configMap(static, ProxyEnvConfigMap)
				setBoth(cm, "NO_PROXY", "169.254.169.254, Localhost,::1,127.0.0.1,10.244.0.0/16,10.0.0.0/16,.svc,.cluster.local,kubernetes.default.svc,kubernetes.default,myaks-dns-00000000.hcp.westeurope.azmk8s.io")
				setBoth(cm, "HTTP_PROXY", "http://10.2.128.100:3128/")
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w, s := clone(t, webhook), clone(t, static)
			if err := CheckRoutesAgree(w, s); err != nil {
				t.Fatalf("the unbroken sets already disagree: %v", err)
			}
			tc.breakIt(t, w, s)
			err := CheckRoutesAgree(w, s)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Errorf("CheckRoutesAgree: %v, want agreement", err)
			case tc.wantErr != "" && err == nil:
				t.Fatal("CheckRoutesAgree passed routes that disagree")
			case tc.wantErr != "" && !strings.Contains(err.Error(), tc.wantErr):
				t.Errorf("error:\n  %v\nwant it to contain:\n  %s", err, tc.wantErr)
			}
		})
	}
	if err := CheckRoutesAgree(static, static); err == nil || !strings.Contains(err.Error(), "webhook route: want exactly one ConfigMap egressd-inject-config* with config.yaml, found 0") {
		t.Errorf("CheckRoutesAgree(static, static): %v, want it to say the webhook config is missing", err)
	}
}

// The webhook's own selectors follow API-server semantics: unset selects
// everything. LabelSelectorAsSelector(nil) selects nothing, which would
// make an unset namespaceSelector look safe.
func TestWebhookSelectorNilSelectsEverything(t *testing.T) {
	tests := []struct {
		name   string
		sel    *metav1.LabelSelector
		labels map[string]string
		want   bool
	}{
		{name: "unset", sel: nil, labels: map[string]string{"kubernetes.io/metadata.name": "egressd-inject"}, want: true},
		{name: "empty", sel: &metav1.LabelSelector{}, labels: map[string]string{"a": "b"}, want: true},
		{name: "label mismatch", sel: &metav1.LabelSelector{MatchLabels: map[string]string{"network": "filtered"}}, labels: map[string]string{"network": "open"}, want: false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sel, err := webhookSelector(tc.sel)
			if err != nil {
				t.Fatal(err)
			}
			if got := sel.Matches(labels.Set(tc.labels)); got != tc.want {
				t.Errorf("Matches = %v, want %v", got, tc.want)
			}
		})
	}
}
