package main

import (
	"encoding/json"
	"runtime/debug"
	"strings"
	"testing"
)

// TestHelpListsCommandsAndExitsZero: `egressd -h` is the command list on
// stdout with exit 0, not the serve flag set and exit 1.
func TestHelpListsCommandsAndExitsZero(t *testing.T) {
	t.Parallel()
	for _, arg := range []string{"-h", "--help", "-help", "help"} {
		stdout, stderr, code := egressd(t, arg)
		if code != 0 || stderr != "" {
			t.Errorf("egressd %s: exit %d, stderr %q; want 0 and nothing", arg, code, stderr)
		}
		for _, c := range commands() {
			if !c.hidden && !strings.Contains(stdout, "\n  "+c.name+" ") {
				t.Errorf("egressd %s does not list %q:\n%s", arg, c.name, stdout)
			}
		}
	}
}

func TestDashDashVersion(t *testing.T) {
	t.Parallel()
	stdout, _, code := egressd(t, "--version")
	if code != 0 || !strings.HasPrefix(stdout, "egressd "+testVersion+" go") {
		t.Fatalf("exit %d, stdout %q; want 0 and the version", code, stdout)
	}
}

// TestEverySubcommandHelpShowsFlagsAndExample runs `NAME -h` for every
// row of the command table.
func TestEverySubcommandHelpShowsFlagsAndExample(t *testing.T) {
	t.Parallel()
	for _, c := range commands() {
		if c.hidden {
			continue
		}
		t.Run(c.name, func(t *testing.T) {
			stdout, stderr, code := egressd(t, c.name, "-h")
			if code != 0 {
				t.Fatalf("exit %d, stderr %q; want 0", code, stderr)
			}
			want := []string{"usage: egressd " + c.name, "example:\n  egressd " + c.name}
			if c.name != "version" {
				want = append(want, "flags:\n  -")
			}
			for _, w := range want {
				if !strings.Contains(stdout, w) {
					t.Errorf("stdout lacks %q:\n%s", w, stdout)
				}
			}
		})
	}
}

// TestExitCodes: 2 for a wrong invocation, 1 for a failure of the work.
func TestExitCodes(t *testing.T) {
	t.Parallel()
	bad := writeConfig(t, "proxy:\n  proxy_protocol: sometimes\n")
	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantStderr string
	}{
		{name: "unknown flag", args: []string{"check", "-nope"}, wantCode: 2, wantStderr: "egressd check: flag provided but not defined: -nope\nusage: egressd check"},
		{name: "missing -config", args: []string{"check"}, wantCode: 2, wantStderr: "egressd check: -config FILE is required"},
		{name: "explain without URL", args: []string{"explain"}, wantCode: 2, wantStderr: "give exactly one URL"},
		{name: "replay without log", args: []string{"replay", "-config", bad}, wantCode: 2, wantStderr: "give exactly one access log"},
		{name: "ca without init", args: []string{"ca"}, wantCode: 2, wantStderr: "the only subcommand is init"},
		{name: "serve flag typo", args: []string{"-confg", "x"}, wantCode: 2, wantStderr: "flag provided but not defined: -confg"},
		{name: "invalid config", args: []string{"check", "-config", bad}, wantCode: 1, wantStderr: "proxy.proxy_protocol"},
		{name: "missing config file", args: []string{"check", "-config", bad + ".missing"}, wantCode: 1, wantStderr: "no such file"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, stderr, code := egressd(t, tc.args...)
			if code != tc.wantCode || !strings.Contains(stderr, tc.wantStderr) {
				t.Fatalf("exit %d, stderr:\n%s\nwant exit %d and %q", code, stderr, tc.wantCode, tc.wantStderr)
			}
		})
	}
}

// TestServeStartupFailureIsJSON: the event log is JSON lines, and the
// line saying why the process exits is one of them.
func TestServeStartupFailureIsJSON(t *testing.T) {
	t.Parallel()
	_, stderr, code := egressd(t, "serve", "-config", "/nonexistent/egressd.yaml")
	if code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
	lines := strings.Split(strings.TrimSpace(stderr), "\n")
	last := decodeJSONLine(t, lines[len(lines)-1])
	if last["level"] != "fatal" || !strings.Contains(last["error"].(string), "no such file") {
		t.Fatalf("last stderr line %v, want a fatal JSON line naming the error\n%s", last, stderr)
	}
}

func TestVersionFromBuildInfo(t *testing.T) {
	set := func(kv ...string) []debug.BuildSetting {
		var s []debug.BuildSetting
		for i := 0; i+1 < len(kv); i += 2 {
			s = append(s, debug.BuildSetting{Key: kv[i], Value: kv[i+1]})
		}
		return s
	}
	tests := []struct {
		name string
		bi   debug.BuildInfo
		want string
	}{
		{name: "go install at a tag", bi: debug.BuildInfo{Main: debug.Module{Version: "v1.4.0"}}, want: "v1.4.0"},
		{name: "pseudo-version from a checkout", bi: debug.BuildInfo{Main: debug.Module{Version: "v0.0.0-20261202091156-d9c1a4ea08fd+dirty"}, Settings: set("vcs.revision", "d9c1a4ea08fd1f417a5e5a2d3041e0b3efa872e3", "vcs.modified", "true")}, want: "v0.0.0-20261202091156-d9c1a4ea08fd+dirty"},
		{name: "devel with a revision", bi: debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: set("vcs.revision", "d9c1a4ea08fd1f417a5e5a2d3041e0b3efa872e3", "vcs.modified", "false")}, want: "dev+d9c1a4ea08fd"},
		{name: "devel, modified tree", bi: debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: set("vcs.revision", "d9c1a4ea08fd1f417a5e5a2d3041e0b3efa872e3", "vcs.modified", "true")}, want: "dev+d9c1a4ea08fd-dirty"},
		{name: "no VCS information", bi: debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}, want: "dev"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := versionFrom(&tc.bi); got != tc.want {
				t.Fatalf("versionFrom = %q, want %q", got, tc.want)
			}
		})
	}
}

func decodeJSONLine(t *testing.T, line string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(line), &m); err != nil {
		t.Fatalf("not a JSON line: %q: %v", line, err)
	}
	return m
}
