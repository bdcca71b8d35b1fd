// Package promruletest runs promtool on the alert rules a PrometheusRule
// manifest ships, for the tests of the packages whose metrics they watch.
// The rule groups are taken from the manifest itself, so the tests check
// what is deployed, not a copy.
package promruletest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// lookPromtool returns promtool's path. Without it the test is skipped
// locally and fails in CI (.ci/run installs Debian's prometheus package).
func lookPromtool(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("promtool not on PATH in CI; install Debian's prometheus package")
		}
		t.Skip("promtool not on PATH (apt-get install prometheus); CI runs this check")
	}
	return p
}

// manifest is a decoded PrometheusRule, kept generic so nothing the rule
// file format has is dropped on the way to promtool.
type manifest map[string]any

// load reads a PrometheusRule manifest.
func load(t *testing.T, path string) manifest {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// Into a plain map: yaml.v3 gives nested maps the target's named type.
	var doc map[string]any
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("decode %s: %v", path, err)
	}
	m := manifest(doc)
	if m["kind"] != "PrometheusRule" {
		t.Fatalf("%s is a %v, want a PrometheusRule", path, m["kind"])
	}
	return m
}

// alerts returns the alert names in order.
func (m manifest) alerts() []string {
	var out []string
	m.eachRule(func(r map[string]any) {
		if a, ok := r["alert"].(string); ok {
			out = append(out, a)
		}
	})
	return out
}

func (m manifest) eachRule(f func(map[string]any)) {
	spec, _ := m["spec"].(map[string]any)
	groups, _ := spec["groups"].([]any)
	for _, g := range groups {
		rules, _ := g.(map[string]any)["rules"].([]any)
		for _, r := range rules {
			f(r.(map[string]any))
		}
	}
}

// ruleFile is the manifest's spec, a plain Prometheus rule file, with the
// expression of alert replaced by expr when alert is not empty.
func (m manifest) ruleFile(t *testing.T, alert, expr string) []byte {
	t.Helper()
	// Decode a fresh copy through YAML so the edit never touches m.
	b, err := yaml.Marshal(m["spec"])
	if err != nil {
		t.Fatal(err)
	}
	var spec map[string]any
	if err := yaml.Unmarshal(b, &spec); err != nil {
		t.Fatal(err)
	}
	if alert != "" {
		found := false
		manifest{"spec": spec}.eachRule(func(r map[string]any) {
			if r["alert"] == alert {
				r["expr"], found = expr, true
			}
		})
		if !found {
			t.Fatalf("no alert %s", alert)
		}
	}
	out, err := yaml.Marshal(spec)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// run writes rules.yaml and the unit tests into a temporary directory and
// runs promtool with args there.
func run(t *testing.T, promtool string, rules, tests []byte, args ...string) (string, error) {
	t.Helper()
	dir := t.TempDir()
	for name, b := range map[string][]byte{"rules.yaml": rules, "rules_test.yaml": tests} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(promtool, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// mutations replace an alert's expression with one that never fires and
// one that always fires; the unit tests must notice both.
var mutations = map[string]string{
	"never fires":  "vector(0) > 1",
	"always fires": "vector(1)",
}

// Check runs `promtool check rules` and `promtool test rules` on the
// manifest's rules with the unit tests in testsPath (whose rule_files is
// [rules.yaml]), then proves the unit tests pin every alert: with any one
// alert's expression broken (mutations), `promtool test rules` fails.
func Check(t *testing.T, manifestPath, testsPath string) {
	t.Helper()
	promtool := lookPromtool(t)
	m := load(t, manifestPath)
	tests, err := os.ReadFile(testsPath)
	if err != nil {
		t.Fatal(err)
	}
	rules := m.ruleFile(t, "", "")
	if out, err := run(t, promtool, rules, tests, "check", "rules", "rules.yaml"); err != nil {
		t.Fatalf("promtool check rules: %v\n%s", err, out)
	}
	if out, err := run(t, promtool, rules, tests, "test", "rules", "rules_test.yaml"); err != nil {
		t.Fatalf("promtool test rules: %v\n%s", err, out)
	}
	alerts := m.alerts()
	if len(alerts) == 0 {
		t.Fatalf("%s has no alerts", manifestPath)
	}
	for _, a := range alerts {
		for name, expr := range mutations {
			t.Run(fmt.Sprintf("%s broken so it %s", a, name), func(t *testing.T) {
				out, err := run(t, promtool, m.ruleFile(t, a, expr), tests, "test", "rules", "rules_test.yaml")
				if err == nil {
					t.Errorf("promtool test rules passes with %s's expression replaced by %q: %s has no unit test that pins it", a, expr, filepath.Base(testsPath))
				} else if !strings.Contains(out, a) {
					t.Errorf("promtool failed, but not on %s:\n%s", a, out)
				}
			})
		}
	}
}
