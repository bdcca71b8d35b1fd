package deploycheck

import (
	"net/netip"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/egressd/egressd/inject"
)

func TestEveryKustomizationDecodesStrictly(t *testing.T) {
	tests := []struct {
		name  string
		dir   string
		kinds []string // kinds that must be present
	}{
		{name: "corporate base", dir: dirBase, kinds: []string{"Namespace", "ServiceAccount", "Deployment", "Service", "PodDisruptionBudget", "HorizontalPodAutoscaler", "NetworkPolicy"}},
		{name: "corporate dev", dir: dirDev, kinds: []string{"ConfigMap", "Deployment", "Service", "NetworkPolicy"}},
		{name: "corporate aks", dir: dirAKS, kinds: []string{"ConfigMap", "Deployment", "Service", "NetworkPolicy", "ServiceMonitor", "PrometheusRule"}},
		{name: "workload", dir: dirWorkload, kinds: []string{"Namespace", "ConfigMap", "NetworkPolicy", "Deployment"}},
		{name: "monitoring", dir: dirMonitoring, kinds: []string{"ServiceMonitor", "PrometheusRule", "ConfigMap"}},
		{name: "workload inject webhook", dir: filepath.Join(dirWorkload, "inject"), kinds: []string{"MutatingWebhookConfiguration", "Deployment", "Service", "Certificate"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := render(t, tc.dir)
			have := map[string]bool{}
			for _, o := range s.Objects {
				have[o.Kind] = true
			}
			for _, k := range tc.kinds {
				if !have[k] {
					t.Errorf("rendered %s has no %s", tc.dir, k)
				}
			}
		})
	}
}

func TestCorporateOverlays(t *testing.T) {
	for _, dir := range []string{dirDev, dirAKS} {
		s := render(t, dir)
		for _, c := range CorporateChecks() {
			t.Run(filepath.Base(dir)+"/"+c.Name, func(t *testing.T) {
				if err := c.Run(s); err != nil {
					t.Errorf("%s: %v", dir, err)
				}
			})
		}
	}
}

// The PLS checks pass trivially without a PLS Service, so prove the aks
// overlay has one, with the settings the design depends on.
func TestAKSServiceIsAPrivateLinkService(t *testing.T) {
	s := render(t, dirAKS)
	svc, ok := plsService(s)
	if !ok {
		t.Fatal("aks overlay: no egressd Service with azure-pls-create: \"true\"")
	}
	want := map[string]string{
		annInternal:                       "true",
		annPLSCreate:                      "true",
		annProxyProtocol:                  "true",
		probeAnnotation(3128, "port"):     "3128",
		probeAnnotation(3128, "protocol"): "http",
	}
	for k, v := range want {
		if got := svc.Annotations[k]; got != v {
			t.Errorf("annotation %s = %q, want %q", k, got, v)
		}
	}
	for _, k := range []string{annPrefix + "azure-pls-name", annPrefix + "azure-pls-ip-configuration-subnet", annNATCount, annNATIPs, annVisibility, annAutoApproval} {
		if svc.Annotations[k] == "" {
			t.Errorf("annotation %s is missing", k)
		}
	}
	if svc.Spec.Type != corev1.ServiceTypeLoadBalancer || svc.Spec.ExternalTrafficPolicy != corev1.ServiceExternalTrafficPolicyLocal {
		t.Errorf("type %s, externalTrafficPolicy %s; want LoadBalancer, Local", svc.Spec.Type, svc.Spec.ExternalTrafficPolicy)
	}
	if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Port != 3128 {
		t.Errorf("ports %v, want only 3128", svc.Spec.Ports)
	}
	cfg, err := egressdConfig(s)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.TLS.CACert == "" || len(cfg.ACL.Tenants) < 2 || len(cfg.ACL.Rulesets) == 0 {
		t.Errorf("aks config should be the realistic example: TLS inspection, two tenants, shared rulesets")
	}
}

// The dev overlay must run on any cluster: no LoadBalancer, no Secrets.
func TestDevOverlayNeedsNothingFromAzure(t *testing.T) {
	s := render(t, dirDev)
	for _, svc := range typedOf[*corev1.Service](s) {
		if svc.Spec.Type != corev1.ServiceTypeClusterIP {
			t.Errorf("Service %s is %s, want ClusterIP", svc.Name, svc.Spec.Type)
		}
	}
	d, _, err := egressdDeployment(s)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range d.Spec.Template.Spec.Volumes {
		if v.Secret != nil {
			t.Errorf("volume %s needs Secret %s, which a local cluster does not have", v.Name, v.Secret.SecretName)
		}
	}
}

func TestWorkload(t *testing.T) {
	s := render(t, dirWorkload)
	for _, c := range WorkloadChecks() {
		t.Run(c.Name, func(t *testing.T) {
			if err := c.Run(s); err != nil {
				t.Error(err)
			}
		})
	}
	ep, err := proxyEnv(s)
	if err != nil {
		t.Fatal(err)
	}
	if want := netip.MustParseAddrPort("10.2.128.100:3128"); ep != want {
		t.Errorf("endpoint %s, want the documented %s", ep, want)
	}
	t.Run("Bicep and Terraform carry the static IP, alias and request message", func(t *testing.T) {
		if err := CheckIaC(WorkloadIaC(dirWorkload, ep)); err != nil {
			t.Error(err)
		}
	})
	t.Run("the inject webhook injects the same endpoint", func(t *testing.T) {
		wh := render(t, filepath.Join(dirWorkload, "inject"))
		var found bool
		for _, cm := range typedOf[*corev1.ConfigMap](wh) {
			raw, ok := cm.Data["config.yaml"]
			if !ok {
				continue
			}
			found = true
			cfg, err := inject.ParseConfig([]byte(raw))
			if err != nil {
				t.Fatalf("ConfigMap %s: %v", cm.Name, err)
			}
			got, err := ProxyEndpoint(cfg.Proxy.HTTPProxy)
			if err != nil || got != ep {
				t.Errorf("inject proxy.http_proxy %q (%v), want http://%s as in %s", cfg.Proxy.HTTPProxy, err, ep, ProxyEnvConfigMap)
			}
		}
		if !found {
			t.Error("deploy/workload/inject renders no ConfigMap with config.yaml")
		}
	})
	t.Run("AKS http-proxy-config points at the endpoint", func(t *testing.T) {
		if err := CheckHTTPProxyConfig(filepath.Join(dirWorkload, "aks-http-proxy-config.json"), ep); err != nil {
			t.Error(err)
		}
	})
}

func TestRunAllNamesEachFailure(t *testing.T) {
	s := render(t, dirWorkload)
	broken := clone(t, s)
	cm, _ := configMap(broken, ProxyEnvConfigMap)
	cm.Data["NO_PROXY"] = "localhost"
	err := RunAll(broken, WorkloadChecks())
	if err == nil {
		t.Fatal("RunAll passed a broken set")
	}
	if want := "../workload: proxy variables name the endpoint: ConfigMap egressd-proxy-env: NO_PROXY and no_proxy differ"; !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not contain %q", err, want)
	}
	if err := RunAll(s, WorkloadChecks()); err != nil {
		t.Errorf("RunAll on the good set: %v", err)
	}
}
