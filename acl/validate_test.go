package acl

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestValidateErrorPaths(t *testing.T) {
	tests := []struct {
		name string
		file string
		want []string
	}{
		{
			name: "rules",
			file: "invalid-rules.yaml",
			want: []string{
				`tenants[0].rules[0].action: "permit": must be "allow" or "deny"`,
				`tenants[0].rules[0].domains[1]: "*.": wildcard must be followed by a domain; use "*.example.com"`,
				`tenants[0].rules[0].domains[2]: "foo.*.com": "*" is only allowed as the whole first label, as in "*.example.com"`,
				`tenants[0].rules[0].domains[3]: "10.0.0.1": IP address in domains; use cidrs`,
				`tenants[0].rules[0].domains[4]: "a..b": empty label`,
				`tenants[0].rules[0].cidrs[0]: "10.0.0.1/8": host bits set; use "10.0.0.0/8"`,
				`tenants[0].rules[0].cidrs[1]: "::ffff:10.0.0.0/104": IPv4-mapped IPv6; write the IPv4 form`,
				`tenants[0].rules[0].cidrs[2]: "nonsense": not a CIDR; use "10.0.0.0/8" or "2001:db8::/32"`,
				`tenants[0].rules[0].ports[0]: "0": not a port or range; use "443" or "8000-8100" (1-65535)`,
				`tenants[0].rules[0].ports[1]: "9000-8000": range end is below its start`,
				`tenants[0].rules[0].ports[2]: "https": not a port or range; use "443" or "8000-8100" (1-65535)`,
				`tenants[0].rules[0].methods[0]: "GE T": not an HTTP method token`,
				`tenants[0].rules[0].schemes[0]: "ftp": must be "http" or "https"`,
				`tenants[0].rules[0].paths[0]: "admin": must start with "/"`,
				`tenants[0].rules[1].name: "default" is reserved for decisions that no rule made`,
				`tenants[0].rules[2].ruleset: "missing": no such ruleset`,
			},
		},
		{
			name: "tenants",
			file: "invalid-tenants.yaml",
			want: []string{
				`tenants[0].link_ids[1]: 1001: listed twice`,
				`tenants[0].require_auth: no users are configured, so nobody could authenticate`,
				`tenants[1].name: "team-a": duplicate of tenants[0].name`,
				`tenants[1].link_ids[0]: 1001: also claimed by tenants[0]; give both tenants disjoint nat_cidrs to tell their PLSs apart`,
				`tenants[1].users[0].bcrypt: not a bcrypt hash:`,
				`tenants[1].users[1].name: "bob:x": must not contain ':' or control characters (Basic auth splits on the first ':')`,
				`tenants[1].users[1]: set bcrypt or password_file, not both`,
				`tenants[1].default: "maybe": must be "deny" or "allow"`,
				`tenants[1].limits.max_connections: -1: must not be negative`,
				`tenants[1].limits.rate: -2: must be a finite number, 0 or more`,
				`tenants[1].tls_inspection.mode: "always": must be "off" or "bump"`,
				`tenants[1].tls_inspection.sni_check: "strict": must be "enforce", "report" or "off"`,
				`tenants[1].tls_inspection.splice[0]: "*.": wildcard must be followed by a domain; use "*.example.com"`,
				`tenants[2].name: "unknown" is reserved for unrecognised callers in metrics`,
				`tenants[2].source_cidrs[0]: 10.2.0.0/16: also used by tenants[1]; the same range cannot identify two tenants`,
				`tenants[2].users[0].name: "alice": already defined at tenants[1].users[0]; a user belongs to exactly one tenant`,
				`tenants[3].name: "bad name!": use letters, digits, '.', '_' and '-'`,
				`rulesets.shared[0].ruleset: "other": rulesets cannot include other rulesets`,
				`default_tenant: "nobody": no such tenant`,
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src, err := os.ReadFile(filepath.Join("testdata", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			cfg := decodeYAML(t, string(src))
			err = cfg.Validate()
			if err == nil {
				t.Fatal("Validate accepted a broken config")
			}
			lines := strings.Split(err.Error(), "\n")
			if len(lines) != len(tc.want) {
				t.Errorf("got %d errors, want %d:\n%s", len(lines), len(tc.want), err)
			}
			for i, w := range tc.want {
				if i >= len(lines) || !strings.HasPrefix(lines[i], w) {
					got := "(none)"
					if i < len(lines) {
						got = lines[i]
					}
					t.Errorf("error %d:\n got %s\nwant %s", i, got, w)
				}
			}
			if _, err := Compile(cfg); err == nil {
				t.Fatal("Compile accepted what Validate rejects")
			}
		})
	}
}

func TestValidateAcceptsGoodConfig(t *testing.T) {
	cfg := decodeYAML(t, matchConfig)
	if err := cfg.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	var empty Config
	if err := empty.Validate(); err != nil {
		t.Fatalf("empty config: %v", err)
	}
}

func TestCompilePasswordFileErrors(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing")
	cfg := Config{Tenants: []TenantConfig{{
		Name:  "a",
		Users: []UserConfig{{Name: "x", PasswordFile: empty}, {Name: "y", PasswordFile: missing}},
	}}}
	_, err := Compile(cfg)
	want := "tenants[0].users[0].password_file: " + empty + ": file is empty\n" +
		"tenants[0].users[1].password_file: read: open " + missing + ": no such file or directory"
	if err == nil || err.Error() != want {
		t.Fatalf("Compile error:\n got %v\nwant %s", err, want)
	}
}
