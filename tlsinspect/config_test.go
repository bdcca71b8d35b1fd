package tlsinspect

import (
	"bytes"
	"reflect"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want string // "" means valid
	}{
		{name: "zero value disables inspection", cfg: Config{}},
		{name: "minimal", cfg: Config{CACert: "c", CAKey: "k"}},
		{
			name: "full",
			cfg: Config{CACert: "c", CAKey: "k", Chain: "ch", UpstreamRoots: []string{"r"}, LeafValidity: 48 * time.Hour,
				CacheSize: 5, NonTLS: "splice", InsecureUpstream: []string{"Legacy.Example.COM.", "10.0.0.1"}},
		},
		{name: "key without cert", cfg: Config{CAKey: "k"}, want: "tls_inspection.ca_cert: required when ca_key or chain is set"},
		{name: "cert without key", cfg: Config{CACert: "c"}, want: "tls_inspection.ca_key: required when ca_cert is set"},
		{
			name: "leaf validity too short",
			cfg:  Config{CACert: "c", CAKey: "k", LeafValidity: 30 * time.Minute},
			want: "tls_inspection.leaf_validity: 30m0s is shorter than the 1h0m0s minimum",
		},
		{
			name: "leaf validity too long",
			cfg:  Config{CACert: "c", CAKey: "k", LeafValidity: 800 * time.Hour},
			want: "tls_inspection.leaf_validity: 800h0m0s is longer than the 720h0m0s maximum",
		},
		{
			name: "negative leaf validity",
			cfg:  Config{CACert: "c", CAKey: "k", LeafValidity: -time.Hour},
			want: "tls_inspection.leaf_validity: -1h0m0s must not be negative",
		},
		{
			name: "negative cache",
			cfg:  Config{CACert: "c", CAKey: "k", CacheSize: -1},
			want: "tls_inspection.cache_size: -1 must not be negative",
		},
		{
			name: "huge cache",
			cfg:  Config{CACert: "c", CAKey: "k", CacheSize: MaxCacheSize + 1},
			want: "tls_inspection.cache_size: 100001 is larger than the 100000 maximum",
		},
		{
			name: "unknown non_tls",
			cfg:  Config{CACert: "c", CAKey: "k", NonTLS: "drop"},
			want: `tls_inspection.non_tls: "drop" is not one of "refuse", "splice"`,
		},
		{
			name: "empty root path",
			cfg:  Config{CACert: "c", CAKey: "k", UpstreamRoots: []string{"a", " "}},
			want: "tls_inspection.upstream_roots[1]: empty path",
		},
		{
			name: "wildcard insecure host",
			cfg:  Config{CACert: "c", CAKey: "k", InsecureUpstream: []string{"*.example.com"}},
			want: `tls_inspection.insecure_upstream[0]: "*.example.com": exact host names only, no wildcards`,
		},
		{
			name: "host with port",
			cfg:  Config{CACert: "c", CAKey: "k", InsecureUpstream: []string{"ok.example", "example.com:443"}},
			want: `tls_inspection.insecure_upstream[1]: "example.com:443": tlsinspect: invalid host name: "example.com:443": invalid character ':'`,
		},
		{
			name: "errors are joined",
			cfg:  Config{CACert: "c", NonTLS: "x", CacheSize: -2},
			want: "tls_inspection.ca_key: required when ca_cert is set\n" +
				"tls_inspection.cache_size: -2 must not be negative\n" +
				`tls_inspection.non_tls: "x" is not one of "refuse", "splice"`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil || err.Error() != tc.want {
				t.Fatalf("Validate() = %v\nwant %s", err, tc.want)
			}
		})
	}
}

// TestConfigYAML pins the YAML key names and that durations decode from
// strings, since the config package decodes this section with KnownFields.
func TestConfigYAML(t *testing.T) {
	tests := []struct {
		name    string
		doc     string
		want    Config
		wantErr string
	}{
		{
			name: "all keys",
			doc: `tls_inspection:
  ca_cert: /etc/egressd/ca/tls.crt
  ca_key: /etc/egressd/ca/tls.key
  chain: /etc/egressd/ca/chain.pem
  upstream_roots: [/etc/egressd/roots/internal.pem]
  leaf_validity: 12h
  cache_size: 500
  non_tls: splice
  insecure_upstream: [legacy.corp.example]
`,
			want: Config{
				CACert: "/etc/egressd/ca/tls.crt", CAKey: "/etc/egressd/ca/tls.key", Chain: "/etc/egressd/ca/chain.pem",
				UpstreamRoots: []string{"/etc/egressd/roots/internal.pem"}, LeafValidity: 12 * time.Hour,
				CacheSize: 500, NonTLS: "splice", InsecureUpstream: []string{"legacy.corp.example"},
			},
		},
		{
			name:    "typo is rejected",
			doc:     "tls_inspection:\n  ca_crt: x\n",
			wantErr: "yaml: unmarshal errors:\n  line 2: field ca_crt not found in type tlsinspect.Config",
		},
		{
			name:    "bad duration",
			doc:     "tls_inspection:\n  leaf_validity: one day\n",
			wantErr: "yaml: unmarshal errors:\n  line 2: cannot unmarshal !!str `one day` into time.Duration",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var doc struct {
				TLS Config `yaml:"tls_inspection"`
			}
			dec := yaml.NewDecoder(bytes.NewReader([]byte(tc.doc)))
			dec.KnownFields(true)
			err := dec.Decode(&doc)
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("Decode() = %v\nwant %s", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if err := doc.TLS.Validate(); err != nil {
				t.Fatalf("Validate() = %v", err)
			}
			if !reflect.DeepEqual(doc.TLS, tc.want) {
				t.Fatalf("decoded %+v\nwant    %+v", doc.TLS, tc.want)
			}
		})
	}
}
