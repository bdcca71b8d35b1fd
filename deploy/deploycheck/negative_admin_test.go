package deploycheck

import (
	"maps"
	"strings"
	"testing"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// amaPeer returns the ama-metrics peer of the managed-Prometheus overlay.
func amaPeer(t *testing.T, s *Set) *networkingv1.NetworkPolicyPeer {
	t.Helper()
	np := policy(t, s, "egressd-admin-ama-metrics")
	if len(np.Spec.Ingress) != 1 || len(np.Spec.Ingress[0].From) != 1 {
		t.Fatalf("egressd-admin-ama-metrics: want one rule with one peer, got %+v", np.Spec.Ingress)
	}
	return &np.Spec.Ingress[0].From[0]
}

// The opt-in overlay admits exactly the ama-metrics pods of kube-system to
// the admin port, and the plain aks overlay does not.
func TestManagedPrometheusOverlayAdmitsOnlyTheAmaMetricsPods(t *testing.T) {
	s := render(t, dirAKSManaged)
	p := amaPeer(t, s)
	if names, ok := selectedNamespaceNames(p.NamespaceSelector); !ok || len(names) != 1 || names[0] != "kube-system" {
		t.Errorf("namespaces %v (%v), want kube-system", names, ok)
	}
	if p.PodSelector == nil || !maps.Equal(p.PodSelector.MatchLabels, amaMetricsPodLabel) || len(p.PodSelector.MatchExpressions) != 0 {
		t.Errorf("podSelector %v, want matchLabels %v", p.PodSelector, amaMetricsPodLabel)
	}
	np := policy(t, s, "egressd-admin-ama-metrics")
	if np.Namespace != "egressd" || np.Spec.Ingress[0].Ports[0].Port.IntValue() != 9090 {
		t.Errorf("policy in %q on port %v, want egressd and the admin port 9090", np.Namespace, np.Spec.Ingress[0].Ports[0].Port)
	}
	for _, o := range s.Objects {
		if o.Kind == "ServiceMonitor" || o.Kind == "PrometheusRule" {
			t.Errorf("%s %s is in the managed-Prometheus overlay; the add-on ignores monitoring.coreos.com kinds", o.Kind, o.Name)
		}
	}
	for _, np := range typedOf[*networkingv1.NetworkPolicy](render(t, dirAKS)) {
		if np.Name == "egressd-admin-ama-metrics" {
			t.Error("the plain aks overlay admits ama-metrics; it is meant to be opt-in")
		}
	}
}

func TestAdminPortPeersThatAreNotNamedFail(t *testing.T) {
	managed := render(t, dirAKSManaged)
	base := func(s *Set) *networkingv1.NetworkPolicyPeer {
		return &policy(t, s, "egressd-admin").Spec.Ingress[0].From[0]
	}
	runBreakCases(t, managed, []breakCase{
		{
			name:  "monitoring namespace selected by a label anyone labelling namespaces sets",
			check: checkAdminPeersNamed,
			breakIt: func(t *testing.T, s *Set) {
				base(s).NamespaceSelector = &metav1.LabelSelector{MatchLabels: map[string]string{"team": "monitoring"}}
				// The older check accepts this: it only wants a non-empty selector.
				if err := checkAdminIngress(s); err != nil {
					t.Fatalf("checkAdminIngress: %v", err)
				}
			},
			wantErr: "from namespaceSelector team=monitoring: name the namespace with kubernetes.io/metadata.name",
		},
		{
			name:  "namespace selected by NotIn",
			check: checkAdminPeersNamed,
			breakIt: func(t *testing.T, s *Set) {
				base(s).NamespaceSelector = &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: nsNameLabel, Operator: metav1.LabelSelectorOpNotIn, Values: []string{"demo"}}}}
			},
			wantErr: "name the namespace with kubernetes.io/metadata.name",
		},
		{
			name:    "every pod of kube-system",
			check:   checkAdminPeersNamed,
			breakIt: func(t *testing.T, s *Set) { amaPeer(t, s).PodSelector = nil },
			wantErr: "from every pod in kube-system: select the scraping pods too (Azure Managed Prometheus: rsName=ama-metrics)",
		},
		{
			name:    "podSelector {} in kube-system",
			check:   checkAdminPeersNamed,
			breakIt: func(t *testing.T, s *Set) { amaPeer(t, s).PodSelector = &metav1.LabelSelector{} },
			wantErr: "from podSelector {} in [kube-system]",
		},
		{
			name:    "podSelector without a namespaceSelector (the policy's own namespace, by no name)",
			check:   checkAdminPeersNamed,
			breakIt: func(t *testing.T, s *Set) { amaPeer(t, s).NamespaceSelector = nil },
			wantErr: "from podSelector rsName=ama-metrics: name the namespace",
		},
	})
}

func TestCorporateChecksRunTheAdminPeerRule(t *testing.T) {
	s := clone(t, render(t, dirAKSManaged))
	amaPeer(t, s).PodSelector = nil
	err := RunAll(s, CorporateChecks())
	if err == nil || !strings.Contains(err.Error(), "admin port peers are named namespaces, and pods in shared ones") {
		t.Fatalf("RunAll: %v", err)
	}
}
