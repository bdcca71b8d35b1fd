package deploycheck

import (
	"net/netip"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
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
		{name: "corporate aks with Azure Managed Prometheus", dir: dirAKSManaged, kinds: []string{"ConfigMap", "Deployment", "Service", "NetworkPolicy"}},
		{name: "workload (webhook route)", dir: dirWorkload, kinds: []string{"Namespace", "ConfigMap", "NetworkPolicy", "Deployment", "MutatingWebhookConfiguration", "Service", "Certificate", "Issuer", "PodDisruptionBudget"}},
		{name: "workload example namespace", dir: dirExample, kinds: []string{"Namespace", "ConfigMap", "NetworkPolicy", "Deployment"}},
		{name: "workload static route", dir: dirStatic, kinds: []string{"Namespace", "ConfigMap", "NetworkPolicy", "Deployment"}},
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
	for _, dir := range []string{dirDev, dirAKS, dirAKSManaged} {
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
	for _, k := range []string{annPLSName, annPLSResourceGroup, annPrefix + "azure-pls-ip-configuration-subnet", annNATCount, annNATIPs, annVisibility, annAutoApproval} {
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

func TestWorkloadWebhookRoute(t *testing.T) {
	s := render(t, dirWorkload)
	for _, c := range WebhookRouteChecks() {
		t.Run(c.Name, func(t *testing.T) {
			if err := c.Run(s); err != nil {
				t.Error(err)
			}
		})
	}
	ep, where, err := workloadEndpoint(s)
	if err != nil {
		t.Fatal(err)
	}
	if want := netip.MustParseAddrPort("10.2.128.100:3128"); ep != want || where != "egressd-inject-config proxy.http_proxy" {
		t.Errorf("endpoint %s from %s, want the documented %s from the webhook config", ep, where, want)
	}
	t.Run("the default route applies none of the static route's objects", func(t *testing.T) {
		for _, name := range []string{ProxyEnvConfigMap, "egressd-ca"} {
			if cm, err := configMap(s, name); err == nil {
				t.Errorf("ConfigMap %s/%s is in the default route; it belongs to static/", cm.Namespace, cm.Name)
			}
		}
	})
	t.Run("the example workload and its policy share one namespace, not the webhook's", func(t *testing.T) {
		ds := filteredDeployments(s)
		if len(ds) != 1 || ds[0].Name != "egress-example" || ds[0].Namespace != "demo" {
			t.Fatalf("filtered Deployments %v, want demo/egress-example", ds)
		}
		if np := policy(t, s, ForceProxyPolicy); np.Namespace != "demo" {
			t.Errorf("force-proxy-egress in %q, want demo", np.Namespace)
		}
		if d, _, err := injectDeployment(s); err != nil || d.Namespace != "egressd-inject" {
			t.Errorf("webhook Deployment %v (%v), want it in egressd-inject", d, err)
		}
	})
	t.Run("Bicep and Terraform carry the static IP, alias and request message", func(t *testing.T) {
		if err := CheckIaC(WorkloadIaC(dirWorkload, ep)); err != nil {
			t.Error(err)
		}
	})
	t.Run("AKS http-proxy-config points at the endpoint", func(t *testing.T) {
		if err := CheckHTTPProxyConfig(filepath.Join(dirWorkload, "aks-http-proxy-config.json"), ep); err != nil {
			t.Error(err)
		}
	})
}

func TestWorkloadStaticRoute(t *testing.T) {
	s := render(t, dirStatic)
	for _, c := range StaticRouteChecks() {
		t.Run(c.Name, func(t *testing.T) {
			if err := c.Run(s); err != nil {
				t.Error(err)
			}
		})
	}
	if s.HasWebhook() {
		t.Error("the static route deploys a webhook")
	}
}

func TestWorkloadRoutesAgree(t *testing.T) {
	if err := CheckRoutesAgree(render(t, dirWorkload), render(t, dirStatic)); err != nil {
		t.Error(err)
	}
}

// The example kustomization alone is what a second namespace applies: it
// must render the namespace-scoped half of the webhook route by itself.
func TestExampleNamespaceStandsAlone(t *testing.T) {
	s := render(t, dirExample)
	if s.HasWebhook() {
		t.Error("example/ deploys the webhook; it is cluster-wide and belongs to inject/ only")
	}
	for _, o := range s.Objects {
		if o.Kind != "Namespace" && o.Namespace != "demo" {
			t.Errorf("%s %s in namespace %q, want demo", o.Kind, o.Name, o.Namespace)
		}
	}
}

func TestRunAllNamesEachFailure(t *testing.T) {
	s := render(t, dirStatic)
	broken := clone(t, s)
	cm, _ := configMap(broken, ProxyEnvConfigMap)
	cm.Data["NO_PROXY"] = "localhost"
	err := RunAll(broken, StaticRouteChecks())
	if err == nil {
		t.Fatal("RunAll passed a broken set")
	}
	if want := "../workload/static: proxy variables name the endpoint: ConfigMap egressd-proxy-env: NO_PROXY and no_proxy differ"; !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not contain %q", err, want)
	}
	if err := RunAll(s, StaticRouteChecks()); err != nil {
		t.Errorf("RunAll on the good set: %v", err)
	}
}
