package deploycheck

import (
	"strings"
	"testing"
)

func TestAzureAnnotationChecksFail(t *testing.T) {
	aks := render(t, dirAKS)
	for _, tc := range []struct {
		name  string
		edit  func(ann map[string]string)
		check func(*Set) error
		want  string
	}{
		{name: "misspelt annotation", check: checkAzureAnnotations, want: "unknown annotation service.beta.kubernetes.io/azure-pls-proxy-protocoll",
			edit: func(a map[string]string) { a[annPrefix+"azure-pls-proxy-protocoll"] = "true" }},
		{name: "probe interval below 5 s", check: checkAzureAnnotations, want: "below Azure's minimum probe interval",
			edit: func(a map[string]string) { a[annPrefix+"port_3128_health-probe_interval"] = "2" }},
		{name: "one probe", check: checkAzureAnnotations, want: "below Azure's minimum of 2 probes",
			edit: func(a map[string]string) { a[annPrefix+"port_3128_health-probe_num-of-probe"] = "1" }},
		{name: "service-wide probe interval below 5 s", check: checkAzureAnnotations, want: "below Azure's minimum probe interval",
			edit: func(a map[string]string) { a[annPrefix+"azure-load-balancer-health-probe-interval"] = "3" }},
		{name: "probe total over 120 s", check: checkAzureAnnotations, want: "exceeds Azure's 120 s",
			edit: func(a map[string]string) {
				a[annPrefix+"port_3128_health-probe_interval"] = "30"
				a[annPrefix+"port_3128_health-probe_num-of-probe"] = "5"
			}},
		{name: "proxy protocol on the shared internal LB", check: checkOwnLoadBalancer, want: "shares the cluster's internal load balancer",
			edit: func(a map[string]string) { delete(a, annLBConfigurations) }},
		{name: "proxy protocol on two load balancers", check: checkOwnLoadBalancer, want: "must name exactly one load balancer",
			edit: func(a map[string]string) { a[annLBConfigurations] = "egressd,kubernetes" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.check(aks); err != nil {
				t.Fatalf("shipped overlay fails: %v", err)
			}
			s := clone(t, aks)
			tc.edit(pls(t, s).Annotations)
			err := tc.check(s)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
}

func TestDrainDelayShorterThanProbeDetectionFails(t *testing.T) {
	aks := render(t, dirAKS)
	if err := checkDrainOutlastsProbe(aks); err != nil {
		t.Fatalf("shipped overlay fails: %v", err)
	}
	s := clone(t, aks)
	editConfig(t, s, "drain_delay: 15s", "drain_delay: 10s")
	err := checkDrainOutlastsProbe(s)
	if want := "proxy.drain_delay 10s is shorter than the load balancer's probe interval 5s × (2 probes + 1) = 15s"; err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("error %v, want %q", err, want)
	}
}

func TestMonitoringIsPickedUpByKubePrometheusStack(t *testing.T) {
	for _, dir := range []string{dirMonitoring, "../workload/inject-monitoring"} {
		s := render(t, dir)
		if err := CheckMonitoringLabels(s); err != nil {
			t.Fatalf("%s: %v", dir, err)
		}
		broken := clone(t, s)
		for _, o := range broken.Objects {
			delete(o.Raw["metadata"].(map[string]any)["labels"].(map[string]any), "release")
			delete(o.Raw["metadata"].(map[string]any)["labels"].(map[string]any), "grafana_dashboard")
		}
		err := CheckMonitoringLabels(broken)
		if err == nil || !strings.Contains(err.Error(), "has no release label") {
			t.Fatalf("%s without labels: %v", dir, err)
		}
	}
}
