package acl

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDocExampleCompiles keeps the YAML example in Config's doc comment
// honest: it must decode strictly and compile.
func TestDocExampleCompiles(t *testing.T) {
	src, err := os.ReadFile("config.go")
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for l := range strings.SplitSeq(string(src), "\n") {
		if y, ok := strings.CutPrefix(l, "//\t"); ok {
			lines = append(lines, y)
		}
		if strings.HasPrefix(l, "type Config struct") {
			break
		}
	}
	yml := strings.Join(lines, "\n")
	pwFile := filepath.Join(t.TempDir(), "ci")
	if err := os.WriteFile(pwFile, []byte("ci-password\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	yml = strings.ReplaceAll(yml, "/etc/egressd/users/ci", pwFile)
	p := compileYAML(t, yml)
	d := p.Decide(linkID(1001, "10.0.1.5:1"), Credentials{}, target(t, "CONNECT", "https", "westeurope.data.mcr.microsoft.com", 443, ""))
	if d.Action != Allow || d.Rule != "mcr" {
		t.Fatalf("got %+v", d)
	}
	d = p.Decide(source("192.168.10.7:1"), Credentials{User: "ci", Password: "ci-password", Present: true}, target(t, "GET", "http", "example.org", 80, "/"))
	if d.Tenant != "build" || !d.WouldDeny {
		t.Fatalf("got %+v", d)
	}
}
