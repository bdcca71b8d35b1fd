package deploycheck

import (
	"errors"
	"fmt"
	"maps"
	"slices"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }

// selects reports whether a label selector matches the pod template.
func selects(sel *metav1.LabelSelector, d *appsv1.Deployment) bool {
	if sel == nil {
		return false
	}
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil || s.Empty() {
		return false
	}
	return s.Matches(labels.Set(d.Spec.Template.Labels))
}

func checkAvailability(s *Set) error {
	d, _, err := egressdDeployment(s)
	if err != nil {
		return err
	}
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if ru := d.Spec.Strategy.RollingUpdate; ru != nil && ru.MaxUnavailable != nil && ru.MaxUnavailable.String() != "0" {
		bad("rollingUpdate.maxUnavailable is %s: use 0 with maxSurge 1 so a rollout never lowers capacity", ru.MaxUnavailable.String())
	}

	var hpas []*autoscalingv2.HorizontalPodAutoscaler
	for _, h := range typedOf[*autoscalingv2.HorizontalPodAutoscaler](s) {
		if h.Spec.ScaleTargetRef.Kind == "Deployment" && h.Spec.ScaleTargetRef.Name == d.Name {
			hpas = append(hpas, h)
		}
	}
	if len(hpas) != 1 {
		if len(hpas) == 0 && (d.Spec.Replicas == nil || *d.Spec.Replicas < 2) {
			bad("Deployment runs fewer than 2 replicas and no HPA: run at least 2 so a rollout or node loss keeps the proxy up")
		}
		bad("want one HorizontalPodAutoscaler targeting Deployment %s, found %d", d.Name, len(hpas))
	} else {
		h := hpas[0]
		// The HPA owns the replica count. A spec.replicas in the manifest
		// is re-applied by every `kubectl apply -k` (the documented way to
		// change tenants), resetting the count and cutting the tunnels of
		// the pods scaled in; the HPA then scales up again.
		if d.Spec.Replicas != nil {
			bad("Deployment sets replicas: %d while HPA %s owns the count: every apply resets it and cuts the scaled-in pods' tunnels; drop spec.replicas", *d.Spec.Replicas, h.Name)
		}
		if h.Spec.MinReplicas == nil || *h.Spec.MinReplicas < 2 {
			bad("HPA %s minReplicas must be at least 2", h.Name)
		}
		if !slices.ContainsFunc(h.Spec.Metrics, func(m autoscalingv2.MetricSpec) bool {
			return m.Resource != nil && m.Resource.Name == corev1.ResourceCPU
		}) {
			bad("HPA %s does not scale on CPU", h.Name)
		}
	}

	var pdbs []*policyv1.PodDisruptionBudget
	for _, p := range typedOf[*policyv1.PodDisruptionBudget](s) {
		if selects(p.Spec.Selector, d) {
			pdbs = append(pdbs, p)
		}
	}
	if len(pdbs) != 1 {
		bad("want one PodDisruptionBudget selecting the egressd pods, found %d", len(pdbs))
	} else if p := pdbs[0]; p.Spec.MaxUnavailable == nil || p.Spec.MaxUnavailable.String() != "1" {
		bad("PodDisruptionBudget %s: use maxUnavailable: 1 (a minAvailable equal to the replica count blocks every node drain)", p.Name)
	}

	keys := map[string]bool{}
	for _, t := range d.Spec.Template.Spec.TopologySpreadConstraints {
		if t.LabelSelector != nil && selects(t.LabelSelector, d) {
			keys[t.TopologyKey] = true
		}
	}
	if aff := d.Spec.Template.Spec.Affinity; aff != nil && aff.PodAntiAffinity != nil {
		for _, t := range aff.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution {
			if selects(t.LabelSelector, d) {
				keys[t.TopologyKey] = true
			}
		}
	}
	for _, k := range []string{"topology.kubernetes.io/zone", "kubernetes.io/hostname"} {
		if !keys[k] {
			bad("pods are not spread over %s: add a topologySpreadConstraint selecting the egressd pods", k)
		}
	}
	return errors.Join(errs...)
}

// maxPodsPerNode is how many egressd pods may share a node: one with a
// required hostname anti-affinity, else as many as the HPA allows.
func maxPodsPerNode(s *Set, d *appsv1.Deployment) int {
	if aff := d.Spec.Template.Spec.Affinity; aff != nil && aff.PodAntiAffinity != nil {
		for _, t := range aff.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution {
			if t.TopologyKey == "kubernetes.io/hostname" && selects(t.LabelSelector, d) {
				return 1
			}
		}
	}
	n := 1
	if d.Spec.Replicas != nil {
		n = int(*d.Spec.Replicas)
	}
	for _, h := range typedOf[*autoscalingv2.HorizontalPodAutoscaler](s) {
		if h.Spec.ScaleTargetRef.Name == d.Name {
			n = max(n, int(h.Spec.MaxReplicas))
		}
	}
	return n
}
