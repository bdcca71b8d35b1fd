package deploycheck

import (
	"errors"
	"fmt"
	"slices"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// nsNameLabel is set by the API server on every namespace to its name and
// cannot be changed, unlike any other namespace label.
const nsNameLabel = "kubernetes.io/metadata.name"

// sharedNamespaces host pods of many owners; a rule admitting one of them
// must also select the pods.
var sharedNamespaces = []string{"kube-system", "default"}

// amaMetricsPodLabel is the label of Azure Managed Prometheus's scraping
// pods, the ama-metrics Deployment in kube-system (Azure/prometheus-collector,
// otelcollector/deploy/addon-chart/azure-monitor-metrics-addon/templates/
// ama-metrics-deployment.yaml).
var amaMetricsPodLabel = map[string]string{"rsName": "ama-metrics"}

// checkAdminPeersNamed: the admin port serves every tenant's metrics and
// the drain endpoint, so each NetworkPolicy peer admitted to it names its
// namespace by kubernetes.io/metadata.name (a label like team: x is set by
// whoever may label namespaces), and a peer in a shared namespace such as
// kube-system names its pods too; podSelector: {} (every pod) is refused
// wherever it appears.
func checkAdminPeersNamed(s *Set) error {
	d, c, err := egressdDeployment(s)
	if err != nil {
		return err
	}
	admin, _ := namedPort(c, "admin")
	rules, _ := ingressRulesFor(s, d, c, admin)
	var errs []error
	for _, r := range rules {
		for _, f := range r.From {
			if f.IPBlock != nil {
				continue // checkAdminIngress refuses it
			}
			names, ok := selectedNamespaceNames(f.NamespaceSelector)
			if !ok {
				errs = append(errs, fmt.Errorf("a NetworkPolicy rule admits the admin port %d from %s: name the namespace with %s (matchLabels or In), the only namespace label nobody can set", admin, describePeer(f), nsNameLabel))
				continue
			}
			if f.PodSelector != nil && len(f.PodSelector.MatchLabels)+len(f.PodSelector.MatchExpressions) == 0 {
				errs = append(errs, fmt.Errorf("a NetworkPolicy rule admits the admin port %d from podSelector {} in %v: name the scraping pods' labels, or drop the podSelector for a namespace of its own", admin, names))
				continue
			}
			for _, n := range names {
				if slices.Contains(sharedNamespaces, n) && f.PodSelector == nil {
					errs = append(errs, fmt.Errorf("a NetworkPolicy rule admits the admin port %d from every pod in %s: select the scraping pods too (Azure Managed Prometheus: %s)", admin, n, metav1.FormatLabelSelector(&metav1.LabelSelector{MatchLabels: amaMetricsPodLabel})))
				}
			}
		}
	}
	return errors.Join(errs...)
}

// selectedNamespaceNames returns the namespaces a selector names by
// kubernetes.io/metadata.name, and false when it selects by anything else.
func selectedNamespaceNames(sel *metav1.LabelSelector) ([]string, bool) {
	if sel == nil {
		return nil, false
	}
	var names []string
	for k, v := range sel.MatchLabels {
		if k != nsNameLabel {
			return nil, false
		}
		names = append(names, v)
	}
	for _, e := range sel.MatchExpressions {
		if e.Key != nsNameLabel || e.Operator != metav1.LabelSelectorOpIn {
			return nil, false
		}
		names = append(names, e.Values...)
	}
	return names, len(names) > 0
}
