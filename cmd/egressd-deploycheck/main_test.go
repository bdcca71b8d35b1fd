package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestShippedOverlaysPass(t *testing.T) {
	var out, errb bytes.Buffer
	dirs := []string{"../../deploy/corporate/overlays/aks", "../../deploy/corporate/overlays/aks-managed-prometheus", "../../deploy/corporate/overlays/dev", "../../deploy/workload", "../../deploy/workload/static", "../../deploy/monitoring", "../../deploy/workload/inject-monitoring"}
	if code := run(dirs, &out, &errb); code != 0 {
		t.Fatalf("exit %d\n%s", code, errb.String())
	}
	for _, want := range []string{"corporate:", "webhook route:", "static route:", "monitoring:"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}

// A platform team's overlay that breaks a rule fails the command: here a
// wrongly cased field, which a real apply would drop.
func TestBrokenOverlayFails(t *testing.T) {
	dir := t.TempDir()
	base, _ := filepath.Abs("../../deploy/corporate/overlays/aks")
	rel, _ := filepath.Rel(dir, base)
	files := map[string]string{
		"kustomization.yaml": "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [" + rel + "]\npatches:\n  - path: patch.yaml\n",
		"patch.yaml":         "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: egressd, namespace: egressd}\nspec:\n  template:\n    spec:\n      terminationgraceperiodseconds: 5\n",
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	var out, errb bytes.Buffer
	if code := run([]string{dir}, &out, &errb); code != 1 {
		t.Fatalf("exit %d, want 1\nstdout %s\nstderr %s", code, out.String(), errb.String())
	}
	if !strings.Contains(errb.String(), "terminationgraceperiodseconds") {
		t.Fatalf("stderr does not name the field:\n%s", errb.String())
	}
}

func TestDirectoryWithNothingToCheckFails(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "kustomization.yaml"), []byte("apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nconfigMapGenerator:\n  - {name: x, literals: [a=b]}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	if code := run([]string{dir}, &out, &errb); code != 1 || !strings.Contains(errb.String(), "nothing to check") {
		t.Fatalf("exit %d, want 1; stderr %s", code, errb.String())
	}
	if code := run(nil, &out, &errb); code != 2 {
		t.Fatalf("no args: exit %d, want 2", code)
	}
}
