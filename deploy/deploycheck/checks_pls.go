package deploycheck

import (
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/egressd/egressd/proxy"
)

// Service annotations of the Azure cloud provider.
const (
	annPrefix        = "service.beta.kubernetes.io/"
	annInternal      = annPrefix + "azure-load-balancer-internal"
	annPLSCreate     = annPrefix + "azure-pls-create"
	annProxyProtocol = annPrefix + "azure-pls-proxy-protocol"
	annNATCount      = annPrefix + "azure-pls-ip-configuration-ip-address-count"
	annNATIPs        = annPrefix + "azure-pls-ip-configuration-ip-address"
	annVisibility    = annPrefix + "azure-pls-visibility"
	annAutoApproval  = annPrefix + "azure-pls-auto-approval"
)

// probeAnnotation is the per-port health probe setting
// service.beta.kubernetes.io/port_{port}_health-probe_{key}.
func probeAnnotation(port int32, key string) string {
	return fmt.Sprintf("%sport_%d_health-probe_%s", annPrefix, port, key)
}

// azureProbeSource is where Azure load balancer health probes come from.
var azureProbeSource = netip.MustParseAddr("168.63.129.16")

// SNATPortsPerNATIP is the number of ports one PLS NAT IP offers towards
// each backend node (Azure documents 64k per NAT IP per backend VM).
const SNATPortsPerNATIP = 64000

// natHeadroom is the share of SNAT ports open connections may use; the
// rest absorbs churn, because the port of a closed flow is not reused at
// once.
const natHeadroom = 0.8

var guid = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// plsService returns the egressd Service that creates a Private Link Service.
func plsService(s *Set) (*corev1.Service, bool) {
	for _, svc := range egressdServices(s) {
		if svc.Annotations[annPLSCreate] == "true" {
			return svc, true
		}
	}
	return nil, false
}

// natIPs returns the static NAT IPs, which must be all of them: egressd's
// trusted_proxies and nat_cidrs can only name addresses that are known.
func natIPs(svc *corev1.Service) ([]netip.Addr, error) {
	count, err := strconv.Atoi(svc.Annotations[annNATCount])
	if err != nil || count < 1 || count > 8 {
		return nil, fmt.Errorf("service %s: %s is %q; set it to the number of NAT IPs, 1 to 8", svc.Name, annNATCount, svc.Annotations[annNATCount])
	}
	var ips []netip.Addr
	for _, f := range strings.Fields(svc.Annotations[annNATIPs]) {
		a, err := netip.ParseAddr(f)
		if err != nil {
			return nil, fmt.Errorf("service %s: %s: %q is not an IP", svc.Name, annNATIPs, f)
		}
		ips = append(ips, a)
	}
	if len(ips) != count {
		return nil, fmt.Errorf("service %s: %s lists %d IPs but %s is %d; list every NAT IP so trusted_proxies and nat_cidrs can cover them", svc.Name, annNATIPs, len(ips), annNATCount, count)
	}
	return ips, nil
}

func checkPLSProxyProtocol(s *Set) error {
	svc, ok := plsService(s)
	if !ok {
		return nil
	}
	cfg, err := egressdConfig(s)
	if err != nil {
		return err
	}
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if svc.Spec.Type != corev1.ServiceTypeLoadBalancer || svc.Annotations[annInternal] != "true" {
		bad("Service %s: a PLS needs type LoadBalancer with %s: \"true\"", svc.Name, annInternal)
	}
	pp := svc.Annotations[annProxyProtocol] == "true"
	switch {
	case !pp:
		bad("Service %s: %s is not \"true\": without the PROXY v2 header egressd sees no LinkID and every consumer looks alike", svc.Name, annProxyProtocol)
	case cfg.Proxy.ProxyProtocol != proxy.PPRequired:
		bad("proxy.proxy_protocol is %q but the PLS sends a PROXY header on every connection: set it to required so a connection without one is refused", cfg.Proxy.ProxyProtocol)
	}
	nat, err := natIPs(svc)
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	trusted, err := parsePrefixes(cfg.Proxy.TrustedProxies)
	if err != nil {
		return errors.Join(append(errs, fmt.Errorf("proxy.trusted_proxies: %w", err))...)
	}
	for _, a := range nat {
		if !covered(a, trusted) {
			bad("proxy.trusted_proxies does not cover PLS NAT IP %s (%s): connections through it would be closed; add the NAT subnet", a, annNATIPs)
		}
	}
	if svc.Spec.ExternalTrafficPolicy == corev1.ServiceExternalTrafficPolicyLocal && !covered(azureProbeSource, trusted) {
		bad("proxy.trusted_proxies does not cover %s: the Azure LB health probes (with externalTrafficPolicy Local they keep that source) would be closed and every node marked down", azureProbeSource)
	}
	for i, t := range cfg.ACL.Tenants {
		if len(t.NATCIDRs) == 0 {
			continue
		}
		scope, err := parsePrefixes(t.NATCIDRs)
		if err != nil {
			bad("tenants[%d].nat_cidrs: %v", i, err)
			continue
		}
		for _, a := range nat {
			if !covered(a, scope) {
				bad("tenants[%d] (%s).nat_cidrs does not cover PLS NAT IP %s: its LinkIDs would not be recognised on connections through that IP", i, t.Name, a)
			}
		}
	}
	return errors.Join(errs...)
}

func checkProbeDesign(s *Set) error {
	svc, ok := plsService(s)
	if !ok || svc.Annotations[annProxyProtocol] != "true" {
		return nil
	}
	_, c, err := egressdDeployment(s)
	if err != nil {
		return err
	}
	proxyPort, _ := namedPort(c, "proxy")
	var sp *corev1.ServicePort
	for i := range svc.Spec.Ports {
		if n, ok := resolvePort(c, svc.Spec.Ports[i].TargetPort); ok && n == proxyPort {
			sp = &svc.Spec.Ports[i]
		}
	}
	if sp == nil {
		return fmt.Errorf("service %s has no port targeting the proxy port %d", svc.Name, proxyPort)
	}
	if svc.Spec.ExternalTrafficPolicy != corev1.ServiceExternalTrafficPolicyLocal {
		return fmt.Errorf("service %s: externalTrafficPolicy is %q: with Cluster the socket peer becomes a node address, so trusted_proxies and nat_cidrs cannot name the PLS NAT IPs; use Local with the health-probe annotations on port %d", svc.Name, svc.Spec.ExternalTrafficPolicy, sp.Port)
	}
	// With Local, Azure probes kube-proxy's health-check node port unless
	// told otherwise, and that port cannot parse the PROXY header Azure adds
	// to every probe once proxy protocol is on (kubernetes/kubernetes#121819).
	var errs []error
	ann := svc.Annotations
	probePort := ann[probeAnnotation(sp.Port, "port")]
	if probePort != strconv.Itoa(int(sp.Port)) && probePort != sp.Name {
		errs = append(errs, fmt.Errorf("service %s: %s is %q: point the LB probe at the proxy port (%d or %q) itself, or it probes kube-proxy's health-check node port, which fails on the PROXY header", svc.Name, probeAnnotation(sp.Port, "port"), probePort, sp.Port, sp.Name))
	}
	switch proto := ann[probeAnnotation(sp.Port, "protocol")]; proto {
	case "http":
		if p := ann[probeAnnotation(sp.Port, "request-path")]; p != "/" {
			errs = append(errs, fmt.Errorf("service %s: %s is %q: egressd answers a probe's `GET /` (200, 503 while draining); set it to /", svc.Name, probeAnnotation(sp.Port, "request-path"), p))
		}
	case "tcp":
	default:
		errs = append(errs, fmt.Errorf("service %s: %s is %q: use http (sees the drain) or tcp; https cannot work on a plain proxy port", svc.Name, probeAnnotation(sp.Port, "protocol"), proto))
	}
	return errors.Join(errs...)
}

func checkPLSApproval(s *Set) error {
	svc, ok := plsService(s)
	if !ok {
		return nil
	}
	var errs []error
	vis := strings.Fields(svc.Annotations[annVisibility])
	if len(vis) == 0 {
		errs = append(errs, fmt.Errorf("service %s: %s is empty: no consumer subscription could see the alias; use \"*\" or a list of subscription IDs", svc.Name, annVisibility))
	}
	visAll := false
	visible := map[string]bool{}
	for _, v := range vis {
		switch {
		case v == "*":
			visAll = true
		case guid.MatchString(v):
			visible[strings.ToLower(v)] = true
		default:
			errs = append(errs, fmt.Errorf("service %s: %s: %q is neither \"*\" nor a subscription ID", svc.Name, annVisibility, v))
		}
	}
	for _, a := range strings.Fields(svc.Annotations[annAutoApproval]) {
		switch {
		case a == "*":
			errs = append(errs, fmt.Errorf("service %s: %s is \"*\": any subscription could connect without approval and reach the corporate egress; list your own subscriptions only", svc.Name, annAutoApproval))
		case !guid.MatchString(a):
			errs = append(errs, fmt.Errorf("service %s: %s: %q is not a subscription ID", svc.Name, annAutoApproval, a))
		case !visAll && !visible[strings.ToLower(a)]:
			errs = append(errs, fmt.Errorf("service %s: %s lists %s, which %s does not make visible, so the auto-approval can never be used; add it to the visibility or use \"*\"", svc.Name, annAutoApproval, a, annVisibility))
		}
	}
	return errors.Join(errs...)
}

// checkNATCapacity: every connection a consumer opens to a backend node
// takes one SNAT port of one PLS NAT IP, about 64k per IP per node. One
// node's egressd pods may hold max_connections each, so
//
//	max_connections × pods per node ≤ NAT IPs × 64000 × 0.8
//
// keeps the pool from running dry before egressd's own limit answers 503.
func checkNATCapacity(s *Set) error {
	svc, ok := plsService(s)
	if !ok {
		return nil
	}
	nat, err := natIPs(svc)
	if err != nil {
		return err
	}
	cfg, err := egressdConfig(s)
	if err != nil {
		return err
	}
	d, _, _ := egressdDeployment(s)
	perNode := maxPodsPerNode(s, d)
	need := cfg.Proxy.MaxConnections * perNode
	capacity := int(float64(len(nat)*SNATPortsPerNATIP) * natHeadroom)
	if need > capacity {
		return fmt.Errorf("proxy.max_connections %d × %d pod(s) per node = %d connections, but %d NAT IP(s) give %d SNAT ports per node (%d%% of %d each): raise %s (at most 8), lower max_connections, or keep one pod per node with a required podAntiAffinity", cfg.Proxy.MaxConnections, perNode, need, len(nat), capacity, int(natHeadroom*100), SNATPortsPerNATIP, annNATCount)
	}
	return nil
}
