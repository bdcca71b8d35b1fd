package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// upstreamCRDs are the CustomResourceDefinitions the manifests use, taken
// from the upstream projects' own module zips at pinned versions (the Go
// module proxy serves them; the sum is checked, so a changed zip fails).
var upstreamCRDs = []struct {
	module, version, sum string
	files                []string
}{
	{
		module: "github.com/cert-manager/cert-manager", version: "v1.21.2",
		sum:   "h1:UWgoYM+KLNtRlqmoWOKjKBOBUPVHeepQ6/ac3ERJW68=",
		files: []string{"deploy/crds/cert-manager.io_certificates.yaml", "deploy/crds/cert-manager.io_issuers.yaml"},
	},
	{
		module: "github.com/prometheus-operator/prometheus-operator", version: "v0.85.0",
		sum: "h1:M5xLCLEoaW2IJfnuCwFzzpL+jSVQu3KGT84Pye+fW8s=",
		files: []string{
			"example/prometheus-operator-crd/monitoring.coreos.com_servicemonitors.yaml",
			"example/prometheus-operator-crd/monitoring.coreos.com_podmonitors.yaml",
			"example/prometheus-operator-crd/monitoring.coreos.com_prometheusrules.yaml",
		},
	},
}

var crdsOnce sync.Once
var crdsErr error

// installCRDs creates the upstream CRDs once and waits until the API
// server serves them.
func installCRDs(t *testing.T) {
	t.Helper()
	crdsOnce.Do(func() { crdsErr = doInstallCRDs(t) })
	if crdsErr != nil {
		t.Fatal(crdsErr)
	}
}

func doInstallCRDs(t *testing.T) error {
	var names []string
	for _, m := range upstreamCRDs {
		dir, err := downloadModule(m.module, m.version, m.sum)
		if err != nil {
			return err
		}
		for _, f := range m.files {
			b, err := os.ReadFile(filepath.Join(dir, f))
			if err != nil {
				return err
			}
			out, err := kubectl(t, b, "apply", "--server-side", "--validate=strict", "-f", "-", "-o", "name")
			if err != nil {
				return fmt.Errorf("install %s@%s %s: %v", m.module, m.version, f, err)
			}
			names = append(names, splitLines(out)...)
		}
	}
	args := append([]string{"wait", "--for=condition=Established", "--timeout=30s"}, names...)
	if _, err := kubectl(t, nil, args...); err != nil {
		return fmt.Errorf("CRDs not established: %v", err)
	}
	return nil
}

// downloadModule fetches module@version through the go command (module
// cache, proxy, checksum database) and checks its hash against the pin.
func downloadModule(module, version, sum string) (string, error) {
	cmd := exec.Command(goTool(), "mod", "download", "-json", module+"@"+version)
	cmd.Dir = os.TempDir() // outside any module: no go.mod is touched
	cmd.Env = append(os.Environ(), "GOTOOLCHAIN=local", "GOFLAGS=")
	out, err := cmd.Output()
	var info struct{ Dir, Sum, Error string }
	if jerr := json.Unmarshal(out, &info); jerr != nil || err != nil || info.Error != "" {
		return "", fmt.Errorf("go mod download %s@%s: %v %s %s", module, version, err, info.Error, out)
	}
	if info.Sum != sum {
		return "", fmt.Errorf("%s@%s: sum %s, pinned %s", module, version, info.Sum, sum)
	}
	return info.Dir, nil
}
