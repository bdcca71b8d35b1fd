package deploycheck

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
)

// noProxyEntries is the NO_PROXY list a filtered pod gets: from the
// webhook's config on the webhook route, from the ConfigMap on the static
// route.
func noProxyEntries(s *Set) ([]string, error) {
	if !s.HasWebhook() {
		cm, err := configMap(s, ProxyEnvConfigMap)
		if err != nil {
			return nil, err
		}
		return strings.Split(cm.Data["NO_PROXY"], ","), nil
	}
	cfg, _, err := injectConfig(s)
	if err != nil {
		return nil, err
	}
	n := cfg.NoProxy
	entries := []string{"localhost", "127.0.0.1", "::1", "kubernetes.default", "kubernetes.default.svc"}
	if n.APIServerFQDN != "" {
		entries = append(entries, n.APIServerFQDN)
	}
	if n.IMDS == nil || *n.IMDS {
		entries = append(entries, "169.254.169.254")
	}
	return append(entries, n.Extra...), nil
}

// checkNoProxyReachable: NO_PROXY promises a direct connection, so each
// entry that leaves the namespace must be allowed by force-proxy-egress, or
// a client (client-go for the API server, an SDK for IMDS) times out
// instead of connecting. In-cluster names and ranges are reached through
// the own-namespace and named-namespace rules; the API server (its FQDN and
// kubernetes.default, which kube-proxy translates to the API server's
// address) needs an address rule on TCP 443; an IP literal needs a rule
// covering it.
func checkNoProxyReachable(s *Set, np *networkingv1.NetworkPolicy, direct []networkingv1.NetworkPolicyEgressRule) error {
	entries, err := noProxyEntries(s)
	if err != nil {
		return err
	}
	covered := func(a netip.Addr, port int32) bool {
		for _, r := range direct {
			p, err := netip.ParsePrefix(r.To[0].IPBlock.CIDR)
			if err == nil && p.Contains(a) && portIs(r.Ports[0], corev1.ProtocolTCP, port) {
				return true
			}
		}
		return false
	}
	apiServer := func() bool {
		for _, r := range direct {
			if portIs(r.Ports[0], corev1.ProtocolTCP, 443) {
				return true
			}
		}
		return false
	}
	var errs []error
	for _, e := range entries {
		e = strings.ToLower(strings.TrimSpace(e))
		switch {
		case e == "" || e == "localhost" || e == "127.0.0.1" || e == "::1":
		case strings.HasPrefix(e, "kubernetes.default") || (!strings.HasPrefix(e, ".") && strings.Contains(e, ".") && !isClusterName(e) && !isIPOrPrefix(e)):
			if !apiServer() {
				errs = append(errs, fmt.Errorf("NetworkPolicy %s: NO_PROXY sends %s direct (the API server) but no egress rule allows an address on TCP 443: client-go in a filtered pod would time out", np.Name, e))
			}
		case isIP(e):
			a, _ := netip.ParseAddr(e)
			port := int32(443)
			if e == "169.254.169.254" {
				port = 80
			}
			if !covered(a, port) {
				errs = append(errs, fmt.Errorf("NetworkPolicy %s: NO_PROXY sends %s direct but no egress rule allows it on TCP %d", np.Name, e, port))
			}
		}
	}
	return errors.Join(errs...)
}

func isClusterName(e string) bool {
	return strings.HasSuffix(e, ".svc") || strings.HasSuffix(e, ".cluster.local") || strings.HasSuffix(e, ".svc.cluster.local")
}

func isIP(e string) bool {
	_, err := netip.ParseAddr(e)
	return err == nil
}

func isIPOrPrefix(e string) bool {
	if isIP(e) {
		return true
	}
	_, err := netip.ParsePrefix(e)
	return err == nil
}
