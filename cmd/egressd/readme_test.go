package main

// The README is part of the interface: these tests hold its version,
// its configuration reference and its example commands to the code.

import (
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/egressd/egressd/internal/config"
)

const repoRoot = "../.."

func readRepoFile(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestReadmeGoVersionMatchesGoMod: every "Go 1.x" the README names is
// go.mod's go line, so a fresh clone installs the Go that builds it.
func TestReadmeGoVersionMatchesGoMod(t *testing.T) {
	t.Parallel()
	m := regexp.MustCompile(`(?m)^go (\S+)$`).FindStringSubmatch(readRepoFile(t, "go.mod"))
	if m == nil {
		t.Fatal("go.mod has no go line")
	}
	found := regexp.MustCompile(`\bGo (1\.[0-9.]*[0-9])`).FindAllStringSubmatch(readRepoFile(t, "README.md"), -1)
	if len(found) == 0 {
		t.Fatalf("README names no Go version; want Go %s", m[1])
	}
	for _, f := range found {
		if f[1] != m[1] {
			t.Errorf("README says Go %s, go.mod says go %s", f[1], m[1])
		}
	}
}

// TestMakeDockerPassesVersion: the image's binary is stamped like make
// build's, through the Dockerfile's ARG VERSION.
func TestMakeDockerPassesVersion(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("make not installed")
	}
	out, err := exec.Command("make", "-n", "-C", repoRoot, "docker", "VERSION=v9.8.7-test").CombinedOutput()
	if err != nil {
		t.Fatalf("make -n docker: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "docker build --build-arg VERSION=v9.8.7-test ") {
		t.Errorf("make docker does not pass VERSION as a build argument:\n%s", out)
	}
	df := readRepoFile(t, "Dockerfile")
	if !strings.Contains(df, "\nARG VERSION") || !strings.Contains(df, "-X main.version=${VERSION}") {
		t.Errorf("Dockerfile does not stamp ARG VERSION into the binary:\n%s", df)
	}
}

// readmeSection is the text under the heading that starts with heading,
// up to the next heading.
func readmeSection(t *testing.T, readme, heading string) string {
	t.Helper()
	i := strings.Index(readme, "\n"+heading)
	if i < 0 {
		t.Fatalf("README has no section %q", heading)
	}
	rest := readme[i+1:]
	rest = rest[strings.IndexByte(rest, '\n')+1:]
	if j := strings.Index(rest, "\n#"); j >= 0 {
		rest = rest[:j]
	}
	return rest
}

// TestReadmeReferenceListsEveryConfigKey walks the yaml tags of the
// config structs (internal/config, proxy, acl, tlsinspect) and wants a
// table row for every key in its section of the reference, with a
// default column.
func TestReadmeReferenceListsEveryConfigKey(t *testing.T) {
	t.Parallel()
	readme := readRepoFile(t, "README.md")
	sections := []struct{ prefix, heading string }{
		// Longest prefix first: a rule key is not a tenant key.
		{"tenants[].rules[].", "### Rule keys"},
		{"rulesets.NAME[].", "### Rule keys"},
		{"tenants[].", "### Tenant keys"},
		{"proxy.", "### `proxy:`"},
		{"admin.", "### `admin:`"},
		{"log.", "### `log:`"},
		{"tls_inspection.", "### `tls_inspection:`"},
		{"", "### Policy"},
	}
	keys := config.YAMLKeys(reflect.TypeFor[config.Config](), "")
	if len(keys) < 60 {
		t.Fatalf("only %d keys found; the walk is broken: %v", len(keys), keys)
	}
	isParent := func(k string) bool {
		for _, o := range keys {
			if strings.HasPrefix(o, k+".") || strings.HasPrefix(o, k+"[].") {
				return true
			}
		}
		return false
	}
	for _, k := range keys {
		if isParent(k) && k != "tenants" && k != "rulesets" && k != "tenants[].users" && k != "tenants[].rules" {
			continue // a section, listed by its keys
		}
		for _, s := range sections {
			if !strings.HasPrefix(k, s.prefix) {
				continue
			}
			row := "| `" + strings.TrimPrefix(k, s.prefix) + "` | "
			if body := readmeSection(t, readme, s.heading); !strings.Contains(body, row) || !strings.Contains(body, "| key | default | meaning |") {
				t.Errorf("README section %s has no row %q (config key %s)", s.heading, row, k)
			}
			break
		}
	}
}

// TestReadmeExampleCommandsRun runs every `egressd ...` line of the
// README's sh blocks as written, with bash, in a scratch directory that
// sees the checkout's files, against the embedded development config.
func TestReadmeExampleCommandsRun(t *testing.T) {
	t.Parallel()
	readme := readRepoFile(t, "README.md")
	var lines []string
	for _, block := range regexp.MustCompile("(?s)```sh\n(.*?)```").FindAllStringSubmatch(readme, -1) {
		for _, l := range strings.Split(block[1], "\n") {
			if strings.HasPrefix(l, "egressd ") || l == "egressd" {
				lines = append(lines, l)
			}
		}
	}
	if len(lines) < 5 {
		t.Fatalf("found %d egressd example lines in the README, want the examples block", len(lines))
	}
	root, err := filepath.Abs(repoRoot)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	entries, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if err := os.Symlink(filepath.Join(root, e.Name()), filepath.Join(dir, e.Name())); err != nil {
			t.Fatal(err)
		}
	}
	for _, l := range lines {
		if l == "egressd" || strings.HasPrefix(l, "egressd serve") {
			t.Errorf("README example %q runs a server; the examples block holds commands that finish", l)
			continue
		}
		cmd := exec.Command("bash", "-c", l)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "PATH="+filepath.Dir(binPath)+string(os.PathListSeparator)+os.Getenv("PATH"))
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Errorf("README example %q: %v\n%s", l, err, out)
		}
	}
}
