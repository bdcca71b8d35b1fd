package deploycheck

import "errors"

// Check is one cross-check over a rendered set. Run returns nil when the
// set passes, or an error saying what to fix.
type Check struct {
	Name string
	Run  func(*Set) error
}

// CorporateChecks are run on every kustomization that deploys egressd.
// The Private Link checks pass trivially when the set has no PLS Service
// (the dev overlay); the tests assert the aks overlay has one.
func CorporateChecks() []Check {
	return []Check{
		{"config passes egressd check", checkConfigValid},
		{"config and its files are mounted so reload works", checkConfigMounted},
		{"ports agree between config, container and Services", checkPorts},
		{"probes use the admin port", checkProbes},
		{"grace period covers preStop and drain_timeout", checkDrain},
		{"pod is hardened", checkHardening},
		{"replicas, PDB, HPA and spreading agree", checkAvailability},
		{"NetworkPolicy admits admin from monitoring only", checkAdminIngress},
		{"admin port peers are named namespaces, and pods in shared ones", checkAdminPeersNamed},
		{"monitoring selects the admin port", checkMonitoring},
		{"PLS proxy protocol matches proxy_protocol and trusted_proxies", checkPLSProxyProtocol},
		{"LB probe design matches externalTrafficPolicy", checkProbeDesign},
		{"PLS auto-approval is visible and never everyone", checkPLSApproval},
		{"PLS has a stable name in a team-owned resource group", checkPLSLifecycle},
		{"NAT IPs cover max_connections", checkNATCapacity},
		{"proxy NetworkPolicy admits the NAT IPs and LB probes", checkProxyIngress},
		{"Azure Service annotations are known and probes within Azure's limits", checkAzureAnnotations},
		{"proxy protocol runs on a load balancer of egressd's own", checkOwnLoadBalancer},
		{"drain_delay outlasts the load balancer's probe detection", checkDrainOutlastsProbe},
	}
}

// WebhookRouteChecks are run on deploy/workload, the consumer side's
// default: egressd-inject sets the proxy variables and the CA bundle.
func WebhookRouteChecks() []Check {
	return []Check{
		{"webhook injects the endpoint and the required NO_PROXY entries", checkInjectConfig},
		{"webhook configuration calls the webhook and selects what its config selects", checkWebhookConfiguration},
		{"force-proxy-egress allows exactly endpoint, DNS and in-cluster", checkForceProxyEgress},
		{"filtered workloads are selected by the webhook and leave the proxy to it", checkWebhookWorkloads},
		{"injected pods name the endpoint and find the CA bundle", checkInjectedPods},
	}
}

// StaticRouteChecks are run on deploy/workload/static, the alternative
// where each Deployment pulls the variables from a ConfigMap.
func StaticRouteChecks() []Check {
	return []Check{
		{"proxy variables name the endpoint", checkProxyEnv},
		{"force-proxy-egress allows exactly endpoint, DNS and in-cluster", checkForceProxyEgress},
		{"filtered workloads use the proxy variables and the CA bundle", checkWorkloads},
	}
}

// RunAll runs checks and joins their failures, each prefixed by its name.
func RunAll(s *Set, checks []Check) error {
	var errs []error
	for _, c := range checks {
		if err := c.Run(s); err != nil {
			errs = append(errs, errors.New(s.Source+": "+c.Name+": "+err.Error()))
		}
	}
	return errors.Join(errs...)
}

// ChecksFor picks the checks that apply to a rendered set by what it
// deploys: egressd itself (corporate), the webhook route (a
// MutatingWebhookConfiguration) or the static route (the proxy-env
// ConfigMap). It returns the names of the groups chosen; none means the set
// deploys nothing deploycheck knows, which a caller should treat as an error
// (a typo'd directory passes nothing silently).
func ChecksFor(s *Set) (checks []Check, groups []string) {
	if s.HasEgressd() {
		checks = append(checks, CorporateChecks()...)
		groups = append(groups, "corporate")
	}
	if s.HasWebhook() {
		checks = append(checks, WebhookRouteChecks()...)
		groups = append(groups, "webhook route")
	} else if _, err := configMap(s, ProxyEnvConfigMap); err == nil {
		checks = append(checks, StaticRouteChecks()...)
		groups = append(groups, "static route")
	}
	for _, o := range s.Objects {
		if o.Kind == "ServiceMonitor" || o.Kind == "PodMonitor" || o.Kind == "PrometheusRule" {
			checks = append(checks, Check{"monitoring is picked up by kube-prometheus-stack and Grafana", CheckMonitoringLabels})
			groups = append(groups, "monitoring")
			break
		}
	}
	return checks, groups
}
