package main

import (
	"debug/buildinfo"
	"strings"
	"testing"
)

// The proxy binary must not carry the webhook's Kubernetes client code
// (issue 14 item 6): the webhook is cmd/egressd-inject. This reads the
// module list of the binary TestMain built, as `go version -m` does.
func TestEgressdBinaryListsNoKubernetesModule(t *testing.T) {
	bi, err := buildinfo.ReadFile(binPath)
	if err != nil {
		t.Fatal(err)
	}
	if len(bi.Deps) == 0 {
		t.Fatal("build info lists no modules; the check would prove nothing")
	}
	for _, m := range bi.Deps {
		if strings.HasPrefix(m.Path, "k8s.io/") || strings.HasPrefix(m.Path, "sigs.k8s.io/") {
			t.Errorf("egressd links %s %s; Kubernetes code belongs in cmd/egressd-inject", m.Path, m.Version)
		}
	}
}

// The webhook command is no longer a subcommand of the proxy.
func TestInjectIsNotAnEgressdCommand(t *testing.T) {
	if _, ok := lookup("inject"); ok {
		t.Fatal("egressd still has an inject command")
	}
}
