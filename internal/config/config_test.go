package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/egressd/egressd/proxy"
)

func TestDefaultConfigIsValidAndLoopbackOnly(t *testing.T) {
	cfg, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(cfg.Proxy.Listen, "127.0.0.1:") || !strings.HasPrefix(cfg.Admin.Listen, "127.0.0.1:") {
		t.Fatalf("development config must listen on loopback only: proxy %q admin %q", cfg.Proxy.Listen, cfg.Admin.Listen)
	}
	if cfg.Proxy.ProxyProtocol != proxy.PPOptional {
		t.Fatalf("proxy_protocol = %q, want optional so plain curl works", cfg.Proxy.ProxyProtocol)
	}
	if cfg.Proxy.DrainTimeout != 25*time.Second || cfg.Proxy.MaxHeaderBytes != 64<<10 {
		t.Fatalf("defaults not applied: drain %s max header %d", cfg.Proxy.DrainTimeout, cfg.Proxy.MaxHeaderBytes)
	}
}

func TestLoadErrorsNameTheLine(t *testing.T) {
	tests := []struct {
		file string
		want []string
	}{
		{"unknown_key.yaml", []string{"testdata/unknown_key.yaml:3: proxy.lisen: unknown key (did you mean listen?)"}},
		{"empty.yaml", []string{"testdata/empty.yaml: config is empty"}},
		{"required_without_trust.yaml", []string{
			"testdata/required_without_trust.yaml:2: proxy.trusted_proxies: required when proxy_protocol is required",
		}},
		// One CIDR parser: the same value is refused the same way wherever
		// it appears, instead of being masked in trusted_proxies.
		{"host_bits.yaml", []string{
			`testdata/host_bits.yaml:5: proxy.trusted_proxies[0]: "10.0.0.5/24": host bits set; use "10.0.0.0/24"`,
			`testdata/host_bits.yaml:11: tenants[0].nat_cidrs[0]: "10.0.0.5/24": host bits set; use "10.0.0.0/24"`,
		}},
		{"bump_without_ca.yaml", []string{
			`testdata/bump_without_ca.yaml:12: tenants[1].tls_inspection.mode: "bump": tenant inspected inspects TLS but no inspection CA is configured`,
		}},
		{"bad_values.yaml", []string{
			`testdata/bad_values.yaml:3: proxy.proxy_protocol: "sometimes": must be required, optional or off`,
			`testdata/bad_values.yaml:6: proxy.trusted_proxies[1]: "not-a-cidr": not a CIDR`,
			`testdata/bad_values.yaml:7: proxy.tcp_keepalive: 5m0s: must be well under the Private Link idle cutoff`,
			`testdata/bad_values.yaml:9: admin.listen: "127.0.0.1:3128": must differ from proxy.listen`,
			`testdata/bad_values.yaml:11: log.format: "xml": must be json, squid or squid_extended`,
			`testdata/bad_values.yaml:12: log.flush_interval: 30s: must be between 0s (unbuffered) and 10s`,
			`testdata/bad_values.yaml:18: tenants[0].rules[0].domains[0]: "*."`,
		}},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			_, err := Load(filepath.Join("testdata", tc.file))
			if err == nil {
				t.Fatal("Load accepted a broken config")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not contain %q:\n%v", w, err)
				}
			}
		})
	}
}

func TestLineOf(t *testing.T) {
	raw := []byte("a:\n  b:\n    - x\n    - c: 1\n")
	tests := []struct {
		path string
		line int
	}{
		{"a", 2}, {"a.b", 3}, {"a.b[1]", 4}, {"a.b[1].c", 4}, {"a.b[7]", 3}, {"missing", 0},
	}
	root := mustNode(t, raw)
	for _, tc := range tests {
		if got := lineOf(root, tc.path); got != tc.line {
			t.Errorf("lineOf(%q) = %d, want %d", tc.path, got, tc.line)
		}
	}
}

func TestLoadReadsFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(path, DefaultYAML(), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(path); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(filepath.Join(t.TempDir(), "missing.yaml")); err == nil || !strings.Contains(err.Error(), "read config") {
		t.Fatalf("missing file error = %v", err)
	}
}

// FuzzParse: Parse never panics, and a config it accepts is accepted again
// (defaults and validation are idempotent).
func FuzzParse(f *testing.F) {
	f.Add(DefaultYAML())
	for _, name := range []string{"unknown_key.yaml", "bad_values.yaml"} {
		if b, err := os.ReadFile(filepath.Join("testdata", name)); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse(data, "fuzz")
		if err != nil {
			return
		}
		if err := cfg.Validate(); err != nil {
			t.Fatalf("accepted config fails Validate again: %v", err)
		}
	})
}
