package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// applyGuardrails really creates the workload guardrails (the admission
// policy and its binding) as rendered, and removes them after the test so
// other tests' namespaces are not affected.
func applyGuardrails(t *testing.T) {
	t.Helper()
	mustKubectl(t, render(t, "../workload/guardrails"), "apply", "--validate=strict", "-f", "-")
	t.Cleanup(func() {
		_, _ = kubectl(t, nil, "delete", "validatingadmissionpolicybinding,validatingadmissionpolicy", "egressd-filtered-pods", "--ignore-not-found")
	})
}

// filteredNamespaceFromRepo creates the namespace as the filtered-namespace
// component renders it (through workload/example), renamed.
func filteredNamespaceFromRepo(t *testing.T, name string) {
	t.Helper()
	for _, o := range documents(t, render(t, "../workload/example")) {
		if o["kind"] == "Namespace" {
			o["metadata"].(map[string]any)["name"] = name
			mustKubectl(t, encode(t, []map[string]any{o}), "apply", "--validate=strict", "-f", "-")
			mustKubectl(t, []byte(fmt.Sprintf("apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: default, namespace: %s}\n", name)), "apply", "-f", "-")
			return
		}
	}
	t.Fatal("workload/example renders no Namespace")
}

func guardedPod(ns, name string, labels map[string]string, hostNetwork bool) []byte {
	spec := map[string]any{"containers": []any{map[string]any{"name": "app", "image": "registry.invalid/app:1"}}}
	if hostNetwork {
		spec["hostNetwork"] = true
	}
	b, _ := yaml.Marshal(map[string]any{"apiVersion": "v1", "kind": "Pod",
		"metadata": map[string]any{"name": name, "namespace": ns, "labels": labels}, "spec": spec})
	return b
}

func TestAdmissionPolicyRefusesPodsThatWouldEscapeTheFilter(t *testing.T) {
	applyGuardrails(t)
	filteredNamespaceFromRepo(t, "e2e-guarded")
	mustKubectl(t, []byte("apiVersion: v1\nkind: Namespace\nmetadata: {name: e2e-unguarded}\n---\napiVersion: v1\nkind: ServiceAccount\nmetadata: {name: default, namespace: e2e-unguarded}\n"), "apply", "-f", "-")
	sel := map[string]string{"network": "filtered"}

	// The API server compiles and starts enforcing a new policy
	// asynchronously; wait (bounded) until an unlabelled pod is refused.
	deadline := time.Now().Add(20 * time.Second)
	var err error
	for i := 0; time.Now().Before(deadline); i++ {
		_, err = kubectl(t, guardedPod("e2e-guarded", fmt.Sprintf("unlabelled-%d", i), nil, false), "create", "--dry-run=server", "-f", "-")
		if err != nil {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	if err == nil || !strings.Contains(err.Error(), "must carry the label network: filtered") {
		t.Fatalf("unlabelled pod in a filtered namespace: %v", err)
	}

	// In the repository's namespace both Pod Security (baseline) and the
	// policy refuse hostNetwork; a namespace carrying only the policy's
	// label shows the policy does it alone.
	_, err = kubectl(t, guardedPod("e2e-guarded", "host", sel, true), "create", "-f", "-")
	if err == nil || !strings.Contains(err.Error(), "host") {
		t.Fatalf("hostNetwork pod in a filtered namespace: %v", err)
	}
	t.Logf("hostNetwork in the shipped namespace: %v", err)
	mustKubectl(t, []byte("apiVersion: v1\nkind: Namespace\nmetadata: {name: e2e-policy-only, labels: {egressd.io/filtered: \"true\"}}\n---\napiVersion: v1\nkind: ServiceAccount\nmetadata: {name: default, namespace: e2e-policy-only}\n"), "apply", "-f", "-")
	_, err = kubectl(t, guardedPod("e2e-policy-only", "host", sel, true), "create", "-f", "-")
	if err == nil || !strings.Contains(err.Error(), "may not use hostNetwork") {
		t.Fatalf("hostNetwork pod under the policy alone: %v", err)
	}
	if _, err := kubectl(t, guardedPod("e2e-guarded", "ok", sel, false), "create", "-f", "-"); err != nil {
		t.Fatalf("labelled pod refused: %v", err)
	}
	// Removing the label later is refused too (UPDATE is covered).
	if _, err := kubectl(t, nil, "label", "pod", "-n", "e2e-guarded", "ok", "network-"); err == nil {
		t.Fatal("removing network: filtered from a running pod was allowed")
	}
	// Namespaces not labelled filtered are not the policy's business.
	if _, err := kubectl(t, guardedPod("e2e-unguarded", "plain", nil, false), "create", "-f", "-"); err != nil {
		t.Fatalf("pod in an unfiltered namespace refused: %v", err)
	}
}
