package deploycheck

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
	corev1 "k8s.io/api/core/v1"
)

var update = flag.Bool("update", false, "rewrite the generated blocks in docs/deploy.md")

// deployDoc holds the workload section whose pod examples are generated.
var deployDoc = filepath.Join("..", "..", "docs", "deploy.md")

// podYAML renders a pod as kubectl would show it, without the null and
// empty fields a Go struct marshals (creationTimestamp: null, status: {}).
func podYAML(t *testing.T, pod *corev1.Pod) string {
	t.Helper()
	data, err := json.Marshal(pod)
	if err != nil {
		t.Fatal(err)
	}
	var v any
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(prune(v)); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

// prune drops nulls and empty maps and lists, recursively.
func prune(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if e = prune(e); isEmpty(e) {
				delete(x, k)
			} else {
				x[k] = e
			}
		}
	case []any:
		for i, e := range x {
			x[i] = prune(e)
		}
	}
	return v
}

func isEmpty(v any) bool {
	switch x := v.(type) {
	case nil:
		return true
	case map[string]any:
		return len(x) == 0
	case []any:
		return len(x) == 0
	}
	return false
}

// generatedBlock returns the text between the markers of block name.
func generatedBlock(doc, name string) (start, end int, err error) {
	begin := fmt.Sprintf("<!-- BEGIN generated %s -->\n", name)
	finish := fmt.Sprintf("<!-- END generated %s -->", name)
	i := strings.Index(doc, begin)
	j := strings.Index(doc, finish)
	if i < 0 || j < i {
		return 0, 0, fmt.Errorf("%s: no %q ... %q block", deployDoc, strings.TrimSpace(begin), finish)
	}
	return i + len(begin), j, nil
}

// The pod examples in docs/deploy.md are what the real webhook, with the
// shipped config, makes of the shipped example Deployment. Regenerate with
//
//	go test ./deploy/deploycheck -run TestDocsShowTheInjectedExamplePod -update
func TestDocsShowTheInjectedExamplePod(t *testing.T) {
	s := render(t, dirWorkload)
	cfg, _, err := injectConfig(s)
	if err != nil {
		t.Fatal(err)
	}
	before := PodFromTemplate(exampleDeployment(t, s))
	after, warnings, err := InjectedPod(cfg, before)
	if err != nil {
		t.Fatal(err)
	}
	if len(warnings) > 0 {
		t.Errorf("the webhook warns about the example pod: %v", warnings)
	}
	blocks := map[string]string{
		"example-pod-before": podYAML(t, before),
		"example-pod-after":  podYAML(t, after),
	}
	if blocks["example-pod-before"] == blocks["example-pod-after"] {
		t.Fatal("the webhook did not change the example pod")
	}

	raw, err := os.ReadFile(deployDoc)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(raw)
	for _, name := range []string{"example-pod-before", "example-pod-after"} {
		want := "```yaml\n" + blocks[name] + "```\n"
		start, end, err := generatedBlock(doc, name)
		if err != nil {
			t.Fatal(err)
		}
		if got := doc[start:end]; got != want {
			if !*update {
				t.Errorf("%s block %s differs from the webhook's output; run with -update.\ngot:\n%s\nwant:\n%s", deployDoc, name, got, want)
				continue
			}
			doc = doc[:start] + want + doc[end:]
		}
	}
	if *update && doc != string(raw) {
		if err := os.WriteFile(deployDoc, []byte(doc), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
