package deploycheck

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// annLBConfigurations puts a Service on a named load balancer of AKS's
// multiple standard load balancers.
const annLBConfigurations = annPrefix + "azure-load-balancer-configurations"

// azureServiceAnnotations are the Service annotations cloud-provider-azure
// reads (pkg/consts/consts.go). A misspelt one is silently ignored by the
// cloud provider, so it is an error here.
var azureServiceAnnotations = []string{
	"azure-load-balancer-internal", "azure-load-balancer-internal-subnet", "azure-load-balancer-mode",
	"azure-load-balancer-resource-group", "azure-load-balancer-ipv4", "azure-load-balancer-ipv6",
	"azure-load-balancer-tcp-idle-timeout", "azure-load-balancer-disable-tcp-reset",
	"azure-load-balancer-enable-high-availability-ports", "azure-load-balancer-configurations",
	"azure-load-balancer-health-probe-protocol", "azure-load-balancer-health-probe-interval",
	"azure-load-balancer-health-probe-num-of-probe", "azure-load-balancer-health-probe-request-path",
	"azure-load-balancer-health-probe-port",
	"azure-dns-label-name", "azure-shared-securityrule", "azure-allowed-service-tags", "azure-allowed-ip-ranges",
	"azure-deny-all-except-load-balancer-source-ranges", "azure-disable-load-balancer-floating-ip",
	"azure-additional-public-ips", "azure-pip-name", "azure-pip-name-ipv6", "azure-pip-prefix-id",
	"azure-pip-prefix-id-ipv6", "azure-pip-tags", "azure-pip-ip-tags",
	"azure-pls-create", "azure-pls-name", "azure-pls-resource-group", "azure-pls-ip-configuration-subnet",
	"azure-pls-ip-configuration-ip-address-count", "azure-pls-ip-configuration-ip-address", "azure-pls-fqdns",
	"azure-pls-proxy-protocol", "azure-pls-visibility", "azure-pls-auto-approval",
}

// portAnnotation is the per-port form, service.beta.kubernetes.io/port_N_….
var portAnnotation = regexp.MustCompile(`^port_([0-9]+)_(no_lb_rule|no_probe_rule|health-probe_(protocol|port|interval|num-of-probe|request-path))$`)

// Azure Load Balancer probe limits as cloud-provider-azure enforces them:
// interval at least 5 s, at least 2 probes, interval × count at most 120 s.
const (
	minProbeInterval = 5
	minProbeCount    = 2
	maxProbeTotal    = 120
)

// checkAzureAnnotations flags unknown service.beta.kubernetes.io/*
// annotations and probe settings below Azure's minimums on every Service.
func checkAzureAnnotations(s *Set) error {
	var errs []error
	for _, svc := range typedOf[*corev1.Service](s) {
		interval, count := map[string]int{}, map[string]int{}
		for k, v := range svc.Annotations {
			name, ok := cutPrefix(k, annPrefix)
			if !ok {
				continue
			}
			key := ""
			param := ""
			if m := portAnnotation.FindStringSubmatch(name); m != nil {
				key, param = "port "+m[1], m[3]
			} else if slices.Contains(azureServiceAnnotations, name) {
				key = "service"
				switch name {
				case "azure-load-balancer-health-probe-interval":
					param = "interval"
				case "azure-load-balancer-health-probe-num-of-probe":
					param = "num-of-probe"
				}
			} else {
				errs = append(errs, fmt.Errorf("service %s: unknown annotation %s (cloud-provider-azure ignores it)", svc.Name, k))
				continue
			}
			if param != "interval" && param != "num-of-probe" {
				continue
			}
			n, err := strconv.Atoi(v)
			if err != nil {
				errs = append(errs, fmt.Errorf("service %s: %s=%q is not a number", svc.Name, k, v))
				continue
			}
			if param == "interval" {
				interval[key] = n
				if n < minProbeInterval {
					errs = append(errs, fmt.Errorf("service %s: %s=%d is below Azure's minimum probe interval of %d s", svc.Name, k, n, minProbeInterval))
				}
			} else {
				count[key] = n
				if n < minProbeCount {
					errs = append(errs, fmt.Errorf("service %s: %s=%d is below Azure's minimum of %d probes", svc.Name, k, n, minProbeCount))
				}
			}
		}
		for key, i := range interval {
			if c, ok := count[key]; ok && i*c > maxProbeTotal {
				errs = append(errs, fmt.Errorf("service %s: %s probe interval %d s × %d probes exceeds Azure's %d s", svc.Name, key, i, c, maxProbeTotal))
			}
		}
	}
	return errors.Join(errs...)
}

// checkOwnLoadBalancer: with proxy protocol on, Azure prepends the PROXY
// header to every probe of the load balancer behind the PLS. On AKS all
// internal LoadBalancer Services share one internal LB, so the header
// would break every other Service's probes (an externalTrafficPolicy: Local
// Service's health node port, HTTP probes). egressd must sit on a load
// balancer of its own: AKS multiple standard load balancers, selected with
// the azure-load-balancer-configurations annotation naming one LB.
func checkOwnLoadBalancer(s *Set) error {
	svc, ok := plsService(s)
	if !ok || svc.Annotations[annProxyProtocol] != "true" {
		return nil
	}
	v := svc.Annotations[annLBConfigurations]
	if v == "" {
		return fmt.Errorf("service %s turns PLS proxy protocol on but shares the cluster's internal load balancer: every other Service's probes on it get a PROXY header; set %s to a load balancer of its own (docs/deploy.md, \"Its own load balancer\")", svc.Name, annLBConfigurations)
	}
	if len(splitList(v)) != 1 {
		return fmt.Errorf("service %s: %s=%q must name exactly one load balancer, reserved for egressd", svc.Name, annLBConfigurations, v)
	}
	return nil
}

func cutPrefix(s, p string) (string, bool) {
	if len(s) >= len(p) && s[:len(p)] == p {
		return s[len(p):], true
	}
	return "", false
}

func splitList(v string) []string {
	var out []string
	for _, f := range regexp.MustCompile(`[ ,]+`).Split(v, -1) {
		if f != "" {
			out = append(out, f)
		}
	}
	return out
}

// checkDrainOutlastsProbe: Azure marks a backend down only after `count`
// failed probes `interval` apart, and the first failing probe may come up
// to one interval after the drain starts; until then new connections still
// arrive. So proxy.drain_delay must be at least interval × (count + 1)
// (15 s with the 5 s × 2 minimum), or connections land on a closed listener.
func checkDrainOutlastsProbe(s *Set) error {
	svc, ok := plsService(s)
	if !ok {
		return nil
	}
	cfg, err := egressdConfig(s)
	if err != nil {
		return err
	}
	interval, count := 5, 2
	for _, sp := range svc.Spec.Ports {
		p := strconv.Itoa(int(sp.Port))
		if v, err := strconv.Atoi(svc.Annotations[annPrefix+"port_"+p+"_health-probe_interval"]); err == nil {
			interval = v
		} else if v, err := strconv.Atoi(svc.Annotations[annPrefix+"azure-load-balancer-health-probe-interval"]); err == nil {
			interval = v
		}
		if v, err := strconv.Atoi(svc.Annotations[annPrefix+"port_"+p+"_health-probe_num-of-probe"]); err == nil {
			count = v
		} else if v, err := strconv.Atoi(svc.Annotations[annPrefix+"azure-load-balancer-health-probe-num-of-probe"]); err == nil {
			count = v
		}
	}
	need := time.Duration(interval*(count+1)) * time.Second
	if cfg.Proxy.DrainDelay < need {
		return fmt.Errorf("proxy.drain_delay %s is shorter than the load balancer's probe interval %ds × (%d probes + 1) = %s: Azure still sends new connections when the listener closes", cfg.Proxy.DrainDelay, interval, count, need)
	}
	return nil
}

// CheckMonitoringLabels: kube-prometheus-stack's Prometheus selects
// ServiceMonitors, PodMonitors and PrometheusRules by the `release` label
// (its Helm release name), and Grafana's sidecar loads only ConfigMaps
// labelled grafana_dashboard. Without them the objects apply cleanly and
// are silently ignored.
func CheckMonitoringLabels(s *Set) error {
	var errs []error
	for _, o := range s.Objects {
		labels, _ := o.Raw["metadata"].(map[string]any)["labels"].(map[string]any)
		switch o.Kind {
		case "ServiceMonitor", "PodMonitor", "PrometheusRule":
			if v, _ := labels["release"].(string); v == "" {
				errs = append(errs, fmt.Errorf("%s %s has no release label: kube-prometheus-stack does not select it", o.Kind, o.Name))
			}
		case "ConfigMap":
			if strings.Contains(o.Name, "dashboard") {
				if v, _ := labels["grafana_dashboard"].(string); v != "1" {
					errs = append(errs, fmt.Errorf("ConfigMap %s has no grafana_dashboard: \"1\" label: Grafana's sidecar does not load it", o.Name))
				}
			}
		}
	}
	return errors.Join(errs...)
}
