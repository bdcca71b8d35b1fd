package deploycheck

import (
	"errors"
	"fmt"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"net/netip"
	"net/url"
	"path"
	"slices"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
)

// Names the workload side uses.
const (
	ProxyEnvConfigMap = "egressd-proxy-env"
	ForceProxyPolicy  = "force-proxy-egress"
	// FilteredLabel is the pod label force-proxy-egress selects.
	FilteredLabel, FilteredValue = "network", "filtered"
)

// RequiredNoProxy are the NO_PROXY entries every workload needs: loopback,
// cluster-internal names, and Azure's instance metadata endpoint (workload
// identity tokens), which must never go through a proxy.
func RequiredNoProxy() []string {
	return []string{"localhost", "127.0.0.1", ".cluster.local", ".svc", "kubernetes.default", "169.254.169.254"}
}

// ProxyEndpoint parses a proxy URL of the form http://IP:PORT.
func ProxyEndpoint(raw string) (netip.AddrPort, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("proxy URL %q: %w", raw, err)
	}
	if u.Scheme != "http" {
		return netip.AddrPort{}, fmt.Errorf("proxy URL %q: scheme must be http (egressd serves CONNECT for HTTPS on the same plain port)", raw)
	}
	ap, err := netip.ParseAddrPort(u.Host)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("proxy URL %q: want the private endpoint's static IP and port: %w", raw, err)
	}
	return ap, nil
}

// MissingNoProxy returns the RequiredNoProxy entries absent from list.
func MissingNoProxy(list []string) []string {
	var missing []string
	for _, r := range RequiredNoProxy() {
		if !slices.Contains(list, r) {
			missing = append(missing, r)
		}
	}
	return missing
}

// proxyEnv returns the endpoint named by the proxy variables.
func proxyEnv(s *Set) (netip.AddrPort, error) {
	cm, err := configMap(s, ProxyEnvConfigMap)
	if err != nil {
		return netip.AddrPort{}, err
	}
	ep, err := ProxyEndpoint(cm.Data["HTTP_PROXY"])
	if err != nil {
		return ep, fmt.Errorf("ConfigMap %s HTTP_PROXY: %w", cm.Name, err)
	}
	return ep, nil
}

func checkProxyEnv(s *Set) error {
	ep, err := proxyEnv(s)
	if err != nil {
		return err
	}
	cm, _ := configMap(s, ProxyEnvConfigMap)
	var errs []error
	for _, k := range []string{"HTTPS_PROXY", "http_proxy", "https_proxy"} {
		if cm.Data[k] != cm.Data["HTTP_PROXY"] {
			errs = append(errs, fmt.Errorf("ConfigMap %s: %s is %q but HTTP_PROXY is %q: every spelling must name the same endpoint (curl reads only the lower-case ones)", cm.Name, k, cm.Data[k], cm.Data["HTTP_PROXY"]))
		}
	}
	if cm.Data["NO_PROXY"] != cm.Data["no_proxy"] {
		errs = append(errs, fmt.Errorf("ConfigMap %s: NO_PROXY and no_proxy differ", cm.Name))
	}
	if cm.Data["NODE_USE_ENV_PROXY"] != "1" {
		errs = append(errs, fmt.Errorf("ConfigMap %s: NODE_USE_ENV_PROXY is not \"1\": Node.js ignores the proxy variables without it", cm.Name))
	}
	if m := MissingNoProxy(strings.Split(cm.Data["NO_PROXY"], ",")); len(m) > 0 {
		errs = append(errs, fmt.Errorf("ConfigMap %s: NO_PROXY lacks %s: that traffic would be sent to the proxy and refused", cm.Name, strings.Join(m, ",")))
	}
	if ep.Port() != 3128 {
		errs = append(errs, fmt.Errorf("ConfigMap %s: proxy port %d, the PLS forwards 3128", cm.Name, ep.Port()))
	}
	return errors.Join(errs...)
}

// workloadEndpoint returns the private endpoint the route's proxy settings
// name and where it is set: the webhook's config when the set deploys the
// webhook, the static ConfigMap otherwise.
func workloadEndpoint(s *Set) (netip.AddrPort, string, error) {
	if !s.HasWebhook() {
		ep, err := proxyEnv(s)
		return ep, ProxyEnvConfigMap, err
	}
	const where = InjectConfigMap + " proxy.http_proxy"
	cfg, _, err := injectConfig(s)
	if err != nil {
		return netip.AddrPort{}, where, err
	}
	ep, err := ProxyEndpoint(cfg.Proxy.HTTPProxy)
	if err != nil {
		return ep, where, fmt.Errorf("%s: %w", where, err)
	}
	return ep, where, nil
}

// filteredDeployments are the Deployments whose pods opt in with the label.
func filteredDeployments(s *Set) []*appsv1.Deployment {
	var out []*appsv1.Deployment
	for _, d := range typedOf[*appsv1.Deployment](s) {
		if d.Spec.Template.Labels[FilteredLabel] == FilteredValue {
			out = append(out, d)
		}
	}
	return out
}

func checkForceProxyEgress(s *Set) error {
	ep, where, err := workloadEndpoint(s)
	if err != nil {
		return err
	}
	var np *networkingv1.NetworkPolicy
	for _, p := range typedOf[*networkingv1.NetworkPolicy](s) {
		if p.Name == ForceProxyPolicy {
			np = p
		}
	}
	if np == nil {
		return fmt.Errorf("NetworkPolicy %s: not in the rendered set", ForceProxyPolicy)
	}
	var errs []error
	// A NetworkPolicy only selects pods of its own namespace.
	for _, d := range filteredDeployments(s) {
		if d.Namespace != np.Namespace {
			errs = append(errs, fmt.Errorf("NetworkPolicy %s is in namespace %q but Deployment %s runs in %q: its pods are not held to the proxy", np.Name, np.Namespace, d.Name, d.Namespace))
		}
	}
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("NetworkPolicy %s: "+format, append([]any{np.Name}, args...)...))
	}
	// Every pod of the namespace: a label selector would let a pod that
	// drops the label leave the policy.
	sel := np.Spec.PodSelector
	if len(sel.MatchExpressions) > 0 || len(sel.MatchLabels) > 0 {
		bad("podSelector must be {} (every pod of the namespace), not a label the workload controls: %v", sel.MatchLabels)
	}
	if !slices.Equal(np.Spec.PolicyTypes, []networkingv1.PolicyType{networkingv1.PolicyTypeEgress}) {
		bad("policyTypes must be [Egress], is %v", np.Spec.PolicyTypes)
	}
	var sawEndpoint, sawDNS, sawCluster bool
	var direct []networkingv1.NetworkPolicyEgressRule
	for i, r := range np.Spec.Egress {
		switch kind, err := classifyEgress(r, ep, where); {
		case err != nil:
			bad("egress[%d]: %v", i, err)
		case kind == "endpoint":
			sawEndpoint = true
		case kind == "dns":
			sawDNS = true
		case kind == "cluster":
			sawCluster = true
		case kind == "direct":
			direct = append(direct, r)
		}
	}
	if !sawEndpoint {
		bad("no egress rule allows exactly %s/32 on TCP %d (the private endpoint in %s)", ep.Addr(), ep.Port(), where)
	}
	if !sawDNS {
		bad("no egress rule allows cluster DNS (kube-system pods k8s-app: kube-dns, UDP and TCP 53)")
	}
	if !sawCluster {
		bad("no egress rule allows the namespace's own pods (to: [podSelector: {}])")
	}
	if err := checkNoProxyReachable(s, np, direct); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// classifyEgress names which of the three allowed rules r is, or says why
// it is none of them: anything wider would let a pod bypass the proxy.
// where names the setting the endpoint comes from.
func classifyEgress(r networkingv1.NetworkPolicyEgressRule, ep netip.AddrPort, where string) (string, error) {
	if len(r.To) != 1 {
		return "", fmt.Errorf("want exactly one peer per rule, have %d", len(r.To))
	}
	to := r.To[0]
	switch {
	case to.IPBlock != nil:
		if to.IPBlock.CIDR != ep.Addr().String()+"/32" || len(to.IPBlock.Except) > 0 {
			// Besides the endpoint, single addresses on one TCP port are
			// allowed for what NO_PROXY sends direct (API server, IMDS);
			// checkNoProxyReachable requires each to be named there.
			if p, err := netip.ParsePrefix(to.IPBlock.CIDR); err == nil && p.IsSingleIP() && len(to.IPBlock.Except) == 0 &&
				len(r.Ports) == 1 && (portIs(r.Ports[0], corev1.ProtocolTCP, 443) || portIs(r.Ports[0], corev1.ProtocolTCP, 80)) {
				return "direct", nil
			}
			return "", fmt.Errorf("ipBlock %s: only the private endpoint %s/32 from %s, or one address on TCP 443 or 80 that NO_PROXY sends direct, may be allowed", to.IPBlock.CIDR, ep.Addr(), where)
		}
		if len(r.Ports) != 1 || !portIs(r.Ports[0], corev1.ProtocolTCP, int32(ep.Port())) {
			return "", fmt.Errorf("the private endpoint rule must allow TCP %d only", ep.Port())
		}
		return "endpoint", nil
	case to.NamespaceSelector != nil && to.PodSelector != nil:
		if to.NamespaceSelector.MatchLabels["kubernetes.io/metadata.name"] != "kube-system" || to.PodSelector.MatchLabels["k8s-app"] != "kube-dns" {
			return "", fmt.Errorf("pod peer %s: only kube-system's k8s-app: kube-dns pods may be named", describePeer(to))
		}
		if len(r.Ports) != 2 || !slices.ContainsFunc(r.Ports, func(p networkingv1.NetworkPolicyPort) bool { return portIs(p, corev1.ProtocolUDP, 53) }) ||
			!slices.ContainsFunc(r.Ports, func(p networkingv1.NetworkPolicyPort) bool { return portIs(p, corev1.ProtocolTCP, 53) }) {
			return "", fmt.Errorf("the DNS rule must allow UDP 53 and TCP 53 only")
		}
		return "dns", nil
	case to.NamespaceSelector == nil && to.PodSelector != nil:
		if len(to.PodSelector.MatchLabels)+len(to.PodSelector.MatchExpressions) != 0 {
			return "", fmt.Errorf("the own-namespace rule must be exactly to: [podSelector: {}]")
		}
		return "cluster", nil
	case to.NamespaceSelector != nil && to.PodSelector == nil:
		// Named namespaces only: namespaceSelector {} (or any label) opens
		// every pod of the cluster, and an in-cluster proxy is a bypass.
		ns := to.NamespaceSelector
		if len(ns.MatchLabels) != 0 || len(ns.MatchExpressions) != 1 || ns.MatchExpressions[0].Key != "kubernetes.io/metadata.name" ||
			ns.MatchExpressions[0].Operator != metav1.LabelSelectorOpIn || len(ns.MatchExpressions[0].Values) == 0 {
			return "", fmt.Errorf("namespace peer %s: only named namespaces (kubernetes.io/metadata.name In [...]) may be allowed; namespaceSelector: {} opens every pod of the cluster", describePeer(to))
		}
		return "named", nil
	}
	return "", fmt.Errorf("peer %s is not the endpoint, DNS or in-cluster", describePeer(to))
}

func portIs(p networkingv1.NetworkPolicyPort, proto corev1.Protocol, port int32) bool {
	got := corev1.ProtocolTCP
	if p.Protocol != nil {
		got = *p.Protocol
	}
	return got == proto && p.Port != nil && p.Port.IntValue() == int(port) && p.EndPort == nil
}

func checkWorkloads(s *Set) error {
	filtered := filteredDeployments(s)
	if len(filtered) == 0 {
		return fmt.Errorf("no Deployment has pods labelled %s: %s; the example must show how a workload opts in", FilteredLabel, FilteredValue)
	}
	var errs []error
	for _, d := range filtered {
		ps := d.Spec.Template.Spec
		for _, c := range ps.Containers {
			where := fmt.Sprintf("Deployment %s container %s", d.Name, c.Name)
			if !slices.ContainsFunc(c.EnvFrom, func(e corev1.EnvFromSource) bool {
				return e.ConfigMapRef != nil && e.ConfigMapRef.Name == ProxyEnvConfigMap
			}) {
				errs = append(errs, fmt.Errorf("%s: no envFrom configMapRef %s, so it has no proxy and reaches nothing", where, ProxyEnvConfigMap))
			}
			for _, e := range c.Env {
				if e.Name != "SSL_CERT_FILE" && e.Name != "REQUESTS_CA_BUNDLE" && e.Name != "NODE_EXTRA_CA_CERTS" {
					continue
				}
				if err := fileOnVolume(ps, &c, e.Value); err != nil {
					errs = append(errs, fmt.Errorf("%s: %s=%s: %w", where, e.Name, e.Value, err))
				}
			}
		}
	}
	return errors.Join(errs...)
}

// fileOnVolume checks that p is on a volume mount whose volume exists and,
// for a ConfigMap, is rendered in the set or produced by an init container
// (emptyDir).
func fileOnVolume(ps corev1.PodSpec, c *corev1.Container, p string) error {
	vm, ok := underMount(c, p)
	if !ok {
		return fmt.Errorf("not on any volume mount of the container")
	}
	for _, v := range ps.Volumes {
		if v.Name != vm.Name {
			continue
		}
		if v.EmptyDir != nil {
			rel := path.Base(p)
			for _, ic := range ps.InitContainers {
				if strings.Contains(strings.Join(append(ic.Command, ic.Args...), " "), rel) {
					return nil
				}
			}
			return fmt.Errorf("on emptyDir %q, but no init container writes %s", v.Name, rel)
		}
		return nil
	}
	return fmt.Errorf("volume %q is not defined", vm.Name)
}
