package deploycheck

import (
	"fmt"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
)

// newTyped returns a pointer to the Go type of a built-in kind, or false
// for kinds defined by CRDs (checked structurally by checkCustom).
func newTyped(apiVersion, kind string) (any, bool) {
	switch apiVersion + " " + kind {
	case "v1 Namespace":
		return &corev1.Namespace{}, true
	case "v1 ConfigMap":
		return &corev1.ConfigMap{}, true
	case "v1 Secret":
		return &corev1.Secret{}, true
	case "v1 Service":
		return &corev1.Service{}, true
	case "v1 ServiceAccount":
		return &corev1.ServiceAccount{}, true
	case "apps/v1 Deployment":
		return &appsv1.Deployment{}, true
	case "policy/v1 PodDisruptionBudget":
		return &policyv1.PodDisruptionBudget{}, true
	case "autoscaling/v2 HorizontalPodAutoscaler":
		return &autoscalingv2.HorizontalPodAutoscaler{}, true
	case "networking.k8s.io/v1 NetworkPolicy":
		return &networkingv1.NetworkPolicy{}, true
	case "admissionregistration.k8s.io/v1 MutatingWebhookConfiguration":
		return &admissionregistrationv1.MutatingWebhookConfiguration{}, true
	case "admissionregistration.k8s.io/v1 ValidatingWebhookConfiguration":
		return &admissionregistrationv1.ValidatingWebhookConfiguration{}, true
	case "admissionregistration.k8s.io/v1 ValidatingAdmissionPolicy":
		return &admissionregistrationv1.ValidatingAdmissionPolicy{}, true
	case "admissionregistration.k8s.io/v1 ValidatingAdmissionPolicyBinding":
		return &admissionregistrationv1.ValidatingAdmissionPolicyBinding{}, true
	case "rbac.authorization.k8s.io/v1 Role":
		return &rbacv1.Role{}, true
	case "rbac.authorization.k8s.io/v1 RoleBinding":
		return &rbacv1.RoleBinding{}, true
	case "rbac.authorization.k8s.io/v1 ClusterRole":
		return &rbacv1.ClusterRole{}, true
	case "rbac.authorization.k8s.io/v1 ClusterRoleBinding":
		return &rbacv1.ClusterRoleBinding{}, true
	}
	return nil, false
}

// checkCustom checks the CRD kinds the manifests use (Prometheus Operator,
// cert-manager) by shape: their Go types are not dependencies of egressd.
// Any other kind is an error, so a new kind gets a decoder before it ships.
func checkCustom(o Object) error {
	spec, ok := o.Raw["spec"].(map[string]any)
	if !ok {
		return fmt.Errorf("spec: missing or not a mapping")
	}
	switch o.APIVersion + " " + o.Kind {
	case "monitoring.coreos.com/v1 ServiceMonitor":
		if _, err := endpointsOf(spec, "endpoints"); err != nil {
			return err
		}
		return requireMap(spec, "selector")
	case "monitoring.coreos.com/v1 PodMonitor":
		if _, err := endpointsOf(spec, "podMetricsEndpoints"); err != nil {
			return err
		}
		return requireMap(spec, "selector")
	case "monitoring.coreos.com/v1 PrometheusRule":
		return checkRuleGroups(spec)
	case "cert-manager.io/v1 Certificate":
		if err := requireString(spec, "secretName"); err != nil {
			return err
		}
		return requireMap(spec, "issuerRef")
	case "cert-manager.io/v1 Issuer", "cert-manager.io/v1 ClusterIssuer":
		if len(spec) != 1 {
			return fmt.Errorf("spec: want exactly one issuer type (selfSigned, ca, acme, ...), have %d keys", len(spec))
		}
		return nil
	}
	return fmt.Errorf("no decoder for this kind: add it to deploycheck's newTyped or checkCustom")
}

// endpointsOf returns the port names of a ServiceMonitor's or PodMonitor's
// endpoint list, each of which must name a port and a path.
func endpointsOf(spec map[string]any, key string) ([]string, error) {
	list, ok := spec[key].([]any)
	if !ok || len(list) == 0 {
		return nil, fmt.Errorf("spec.%s: missing or empty", key)
	}
	var ports []string
	for i, e := range list {
		m, ok := e.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("spec.%s[%d]: not a mapping", key, i)
		}
		if err := requireString(m, "port"); err != nil {
			return nil, fmt.Errorf("spec.%s[%d]: %w", key, i, err)
		}
		if err := requireString(m, "path"); err != nil {
			return nil, fmt.Errorf("spec.%s[%d]: %w", key, i, err)
		}
		ports = append(ports, m["port"].(string))
	}
	return ports, nil
}

func checkRuleGroups(spec map[string]any) error {
	groups, ok := spec["groups"].([]any)
	if !ok || len(groups) == 0 {
		return fmt.Errorf("spec.groups: missing or empty")
	}
	for i, g := range groups {
		gm, ok := g.(map[string]any)
		if !ok {
			return fmt.Errorf("spec.groups[%d]: not a mapping", i)
		}
		if err := requireString(gm, "name"); err != nil {
			return fmt.Errorf("spec.groups[%d]: %w", i, err)
		}
		rules, ok := gm["rules"].([]any)
		if !ok || len(rules) == 0 {
			return fmt.Errorf("spec.groups[%d].rules: missing or empty", i)
		}
		for j, r := range rules {
			rm, ok := r.(map[string]any)
			if !ok {
				return fmt.Errorf("spec.groups[%d].rules[%d]: not a mapping", i, j)
			}
			if requireString(rm, "alert") != nil && requireString(rm, "record") != nil {
				return fmt.Errorf("spec.groups[%d].rules[%d]: needs alert or record", i, j)
			}
			if err := requireString(rm, "expr"); err != nil {
				return fmt.Errorf("spec.groups[%d].rules[%d]: %w", i, j, err)
			}
		}
	}
	return nil
}

func requireMap(m map[string]any, key string) error {
	if _, ok := m[key].(map[string]any); !ok {
		return fmt.Errorf("%s: missing or not a mapping", key)
	}
	return nil
}

func requireString(m map[string]any, key string) error {
	if s, ok := m[key].(string); !ok || s == "" {
		return fmt.Errorf("%s: missing or not a string", key)
	}
	return nil
}
