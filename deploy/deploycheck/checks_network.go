package deploycheck

import (
	"errors"
	"fmt"
	"net/netip"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// ingressRulesFor returns the ingress rules of every NetworkPolicy that
// selects the pods and admits traffic to port (by number or name).
func ingressRulesFor(s *Set, d *appsv1.Deployment, c *corev1.Container, port int32) (rules []networkingv1.NetworkPolicyIngressRule, isolated bool) {
	for _, np := range typedOf[*networkingv1.NetworkPolicy](s) {
		sel := np.Spec.PodSelector
		if !selects(&sel, d) {
			continue
		}
		for _, t := range np.Spec.PolicyTypes {
			if t == networkingv1.PolicyTypeIngress {
				isolated = true
			}
		}
		for _, r := range np.Spec.Ingress {
			if len(r.Ports) == 0 {
				rules = append(rules, r)
				continue
			}
			for _, p := range r.Ports {
				if p.Port == nil {
					rules = append(rules, r)
					break
				}
				if n, ok := resolvePort(c, *p.Port); ok && n == port {
					rules = append(rules, r)
					break
				}
			}
		}
	}
	return rules, isolated
}

func checkAdminIngress(s *Set) error {
	d, c, err := egressdDeployment(s)
	if err != nil {
		return err
	}
	admin, _ := namedPort(c, "admin")
	proxy, _ := namedPort(c, "proxy")
	rules, isolated := ingressRulesFor(s, d, c, admin)
	if !isolated {
		return fmt.Errorf("no NetworkPolicy with policyTypes [Ingress] selects the egressd pods, so every pod in the cluster can reach both ports")
	}
	var errs []error
	if len(rules) == 0 {
		errs = append(errs, fmt.Errorf("no NetworkPolicy admits the admin port %d: Prometheus cannot scrape", admin))
	}
	for _, r := range rules {
		if len(r.From) == 0 {
			errs = append(errs, fmt.Errorf("a NetworkPolicy rule admits the admin port %d from everywhere; restrict it to the monitoring namespace", admin))
		}
		for _, f := range r.From {
			if f.IPBlock != nil || f.NamespaceSelector == nil || len(f.NamespaceSelector.MatchLabels)+len(f.NamespaceSelector.MatchExpressions) == 0 {
				errs = append(errs, fmt.Errorf("a NetworkPolicy rule admits the admin port %d from %s; only a namespaceSelector naming the monitoring namespace may", admin, describePeer(f)))
			}
		}
	}
	if proxyRules, _ := ingressRulesFor(s, d, c, proxy); len(proxyRules) == 0 {
		errs = append(errs, fmt.Errorf("no NetworkPolicy admits the proxy port %d: no client could connect", proxy))
	}
	return errors.Join(errs...)
}

func describePeer(p networkingv1.NetworkPolicyPeer) string {
	switch {
	case p.IPBlock != nil:
		return "ipBlock " + p.IPBlock.CIDR
	case p.NamespaceSelector != nil && p.PodSelector != nil:
		return "namespaceSelector " + metav1.FormatLabelSelector(p.NamespaceSelector) + " podSelector " + metav1.FormatLabelSelector(p.PodSelector)
	case p.NamespaceSelector != nil:
		return "namespaceSelector " + metav1.FormatLabelSelector(p.NamespaceSelector)
	case p.PodSelector != nil:
		return "podSelector " + metav1.FormatLabelSelector(p.PodSelector)
	}
	return "everywhere"
}

// checkProxyIngress: behind a PLS, the proxy port must admit every NAT IP
// and, with externalTrafficPolicy Local, the Azure probe source.
func checkProxyIngress(s *Set) error {
	svc, ok := plsService(s)
	if !ok {
		return nil
	}
	d, c, err := egressdDeployment(s)
	if err != nil {
		return err
	}
	nat, err := natIPs(svc)
	if err != nil {
		return err
	}
	proxy, _ := namedPort(c, "proxy")
	rules, _ := ingressRulesFor(s, d, c, proxy)
	var blocks []netip.Prefix
	for _, r := range rules {
		for _, f := range r.From {
			if f.IPBlock == nil {
				return fmt.Errorf("the proxy port NetworkPolicy admits %s; behind a PLS admit only ipBlocks for the NAT subnet and %s", describePeer(f), azureProbeSource)
			}
			p, err := netip.ParsePrefix(f.IPBlock.CIDR)
			if err != nil {
				return fmt.Errorf("NetworkPolicy ipBlock %q: %w", f.IPBlock.CIDR, err)
			}
			blocks = append(blocks, p)
		}
	}
	need := nat
	if svc.Spec.ExternalTrafficPolicy == corev1.ServiceExternalTrafficPolicyLocal {
		need = append(need, azureProbeSource)
	}
	var errs []error
	for _, a := range need {
		if !covered(a, blocks) {
			errs = append(errs, fmt.Errorf("the proxy port NetworkPolicy does not admit %s; add it (or the NAT subnet) as an ipBlock", a))
		}
	}
	return errors.Join(errs...)
}

func checkMonitoring(s *Set) error {
	d, c, err := egressdDeployment(s)
	if err != nil {
		return err
	}
	admin, _ := namedPort(c, "admin")
	var errs []error
	for _, sm := range rawOf(s, "ServiceMonitor") {
		spec := sm.Raw["spec"].(map[string]any)
		ports, _ := endpointsOf(spec, "endpoints")
		sel, err := selectorOf(spec)
		if err != nil {
			errs = append(errs, fmt.Errorf("ServiceMonitor %s: %w", sm.Name, err))
			continue
		}
		for _, want := range ports {
			found := false
			for _, svc := range egressdServices(s) {
				if !sel.Matches(labels.Set(svc.Labels)) {
					continue
				}
				for _, sp := range svc.Spec.Ports {
					if n, ok := resolvePort(c, sp.TargetPort); ok && sp.Name == want && n == admin {
						found = true
					}
				}
			}
			if !found {
				errs = append(errs, fmt.Errorf("ServiceMonitor %s scrapes port %q, but no Service it selects has a port of that name targeting the admin port %d", sm.Name, want, admin))
			}
		}
	}
	for _, pm := range rawOf(s, "PodMonitor") {
		spec := pm.Raw["spec"].(map[string]any)
		ports, _ := endpointsOf(spec, "podMetricsEndpoints")
		sel, err := selectorOf(spec)
		if err != nil || !sel.Matches(labels.Set(d.Spec.Template.Labels)) {
			errs = append(errs, fmt.Errorf("PodMonitor %s does not select the egressd pods", pm.Name))
			continue
		}
		for _, want := range ports {
			if n, ok := namedPort(c, want); !ok || n != admin {
				errs = append(errs, fmt.Errorf("PodMonitor %s scrapes port %q, which is not the admin port", pm.Name, want))
			}
		}
	}
	return errors.Join(errs...)
}

func selectorOf(spec map[string]any) (labels.Selector, error) {
	m, _ := spec["selector"].(map[string]any)
	ml, _ := m["matchLabels"].(map[string]any)
	if len(ml) == 0 {
		return nil, fmt.Errorf("selector.matchLabels is empty")
	}
	set := labels.Set{}
	for k, v := range ml {
		sv, ok := v.(string)
		if !ok {
			return nil, fmt.Errorf("selector.matchLabels.%s is not a string", k)
		}
		set[k] = sv
	}
	return labels.SelectorFromSet(set), nil
}
