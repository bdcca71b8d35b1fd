package e2e

import (
	"bytes"
	"context"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// kustomizations lists every kustomization under deploy/ (Components are
// rendered by the kustomizations that include them).
func kustomizations(t *testing.T) []string {
	t.Helper()
	var dirs []string
	err := filepath.WalkDir("..", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || d.Name() != "kustomization.yaml" {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		var k struct{ Kind string }
		if err := yaml.Unmarshal(b, &k); err != nil {
			return err
		}
		if k.Kind != "Component" {
			dirs = append(dirs, filepath.Dir(p))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(dirs) < 8 {
		t.Fatalf("found only %d kustomizations: %v", len(dirs), dirs)
	}
	return dirs
}

func render(t *testing.T, dir string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var errb bytes.Buffer
	cmd := exec.CommandContext(ctx, "kubectl", "kustomize", dir)
	cmd.Stderr = &errb
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("kubectl kustomize %s: %v\n%s", dir, err, errb.String())
	}
	return out
}

// documents splits a rendered stream into its objects.
func documents(t *testing.T, stream []byte) []map[string]any {
	t.Helper()
	dec := yaml.NewDecoder(bytes.NewReader(stream))
	var objs []map[string]any
	for {
		var o map[string]any
		if err := dec.Decode(&o); err != nil {
			if err.Error() == "EOF" {
				return objs
			}
			t.Fatal(err)
		}
		if o != nil {
			objs = append(objs, o)
		}
	}
}

func encode(t *testing.T, objs []map[string]any) []byte {
	t.Helper()
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	for _, o := range objs {
		if err := enc.Encode(o); err != nil {
			t.Fatal(err)
		}
	}
	return b.Bytes()
}

// ensureNamespaces really creates the namespaces a stream names (its
// Namespace objects and every metadata.namespace), because a dry-run create
// of a namespaced object needs its namespace to exist.
func ensureNamespaces(t *testing.T, objs []map[string]any) {
	t.Helper()
	seen := map[string]bool{}
	var nss []map[string]any
	for _, o := range objs {
		name := ""
		if o["kind"] == "Namespace" {
			nss = append(nss, o)
			name, _ = o["metadata"].(map[string]any)["name"].(string)
		} else if md, ok := o["metadata"].(map[string]any); ok {
			name, _ = md["namespace"].(string)
			if name != "" && !seen[name] {
				nss = append(nss, map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": name}})
			}
		}
		seen[name] = true
	}
	if len(nss) > 0 {
		mustKubectl(t, encode(t, nss), "apply", "--validate=strict", "-f", "-")
	}
}

// serverDryRun submits the stream as a create/update with
// fieldValidation=Strict, so an unknown or wrongly cased field, a wrong
// type or a failed CRD schema is an error, as a real apply would be.
func serverDryRun(t *testing.T, stream []byte) (string, error) {
	return kubectl(t, stream, "apply", "--dry-run=server", "--validate=strict", "-f", "-")
}

// mustRender are kustomizations the walk must find, so a moved directory
// fails here instead of silently dropping out of the dry run.
var mustRender = []string{
	"corporate/base", "corporate/overlays/aks", "corporate/overlays/dev",
	// includes components/azure-managed-prometheus (a Component, rendered only
	// through an overlay)
	"corporate/overlays/aks-managed-prometheus",
	"monitoring", "workload", "workload/inject", "workload/static", "workload/example",
}

func TestEveryKustomizationIsAcceptedByTheAPIServerStrictly(t *testing.T) {
	installCRDs(t)
	dirs := kustomizations(t)
	for _, want := range mustRender {
		if !slices.Contains(dirs, filepath.Join("..", want)) {
			t.Errorf("kustomization %s not found under deploy/ (found %v)", want, dirs)
		}
	}
	for _, dir := range dirs {
		name := strings.TrimPrefix(filepath.ToSlash(dir), "../")
		t.Run(name, func(t *testing.T) {
			stream := render(t, dir)
			objs := documents(t, stream)
			if len(objs) == 0 {
				t.Fatal("renders no object")
			}
			ensureNamespaces(t, objs)
			out, err := serverDryRun(t, stream)
			if err != nil {
				t.Fatalf("refused:\n%v", err)
			}
			if got := strings.Count(out, "(server dry run)"); got != len(objs) {
				t.Fatalf("%d of %d objects accepted:\n%s", got, len(objs), out)
			}
		})
	}
}

// The check above can fail: the API server refuses what Go's
// case-insensitive encoding/json would have accepted.
func TestAPIServerRefusesWronglyCasedAndUnknownFields(t *testing.T) {
	mustKubectl(t, []byte("apiVersion: v1\nkind: Namespace\nmetadata: {name: e2e-strict}\n"), "apply", "-f", "-")
	for name, pod := range map[string]string{
		"lower-cased field": "terminationgraceperiodseconds: 50\n  containers: [{name: a, image: x}]",
		"capitalised field": "containers: [{name: a, image: x, securityContext: {ReadOnlyRootFilesystem: true}}]",
		"unknown field":     "containers: [{name: a, image: x}]\n  drainDelay: 15s",
	} {
		t.Run(name, func(t *testing.T) {
			doc := "apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: e2e-strict}\nspec:\n  " + pod + "\n"
			_, err := serverDryRun(t, []byte(doc))
			if err == nil || !strings.Contains(err.Error(), "unknown field") {
				t.Fatalf("accepted or wrong error: %v", err)
			}
		})
	}
}

func splitLines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}
