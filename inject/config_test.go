package inject

import (
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

func TestLoadConfigErrors(t *testing.T) {
	invalidWant, err := os.ReadFile("testdata/invalid.want")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name    string
		file    string
		wantErr string
	}{
		{name: "missing file", file: "testdata/nope.yaml", wantErr: "read config: open testdata/nope.yaml: no such file or directory"},
		{name: "empty", file: "testdata/empty.yaml", wantErr: "config testdata/empty.yaml: config is empty"},
		{name: "unknown field", file: "testdata/typo.yaml",
			wantErr: "config testdata/typo.yaml: decode: yaml: unmarshal errors:\n  line 4: field service_cidr not found in type inject.NoProxyConfig"},
		{name: "duration without unit", file: "testdata/bad-duration.yaml",
			wantErr: "config testdata/bad-duration.yaml: decode: yaml: unmarshal errors:\n  line 3: cannot unmarshal !!int `10` into time.Duration"},
		{name: "two documents", file: "testdata/two-docs.yaml", wantErr: "config testdata/two-docs.yaml: decode: config must be a single YAML document"},
		{name: "every field invalid", file: "testdata/invalid.yaml", wantErr: strings.TrimSuffix(string(invalidWant), "\n")},
		{name: "http_proxy missing", file: "testdata/no-proxy.yaml",
			wantErr: "config testdata/no-proxy.yaml: proxy.http_proxy: required, e.g. http://10.2.128.100:3128"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := LoadConfig(tc.file)
			if err == nil {
				t.Fatal("want an error")
			}
			if err.Error() != tc.wantErr {
				t.Errorf("error:\n%s\nwant:\n%s", err, tc.wantErr)
			}
		})
	}
}

func TestLoadConfigDefaultsAndValues(t *testing.T) {
	off := false
	cases := []struct {
		name string
		file string
		want func() Config
	}{
		{
			name: "minimal file gets every default",
			file: "testdata/minimal.yaml",
			want: func() Config {
				c := DefaultConfig()
				c.Proxy = ProxyConfig{HTTPProxy: "http://10.2.128.100:3128", HTTPSProxy: "http://10.2.128.100:3128"}
				return c
			},
		},
		{
			name: "every field set, selector not merged with the default",
			file: "testdata/full.yaml",
			want: func() Config {
				return Config{
					Listen: ":8443", AdminListen: ":9090",
					TLS:             TLSConfig{CertFile: "/tls/tls.crt", KeyFile: "/tls/tls.key"},
					MaxRequestBytes: 1 << 20, ShutdownDelay: 5 * time.Second, ShutdownTimeout: 20 * time.Second,
					FailurePolicy: FailurePolicyIgnore,
					Selector:      map[string]string{"egress": "proxied"},
					Override:      true,
					Proxy:         ProxyConfig{HTTPProxy: "http://10.2.128.100:3128", HTTPSProxy: "http://10.2.128.100:3128"},
					NoProxy: NoProxyConfig{
						ServiceCIDRs: []string{"10.0.0.0/16"}, PodCIDRs: []string{"10.244.0.0/16"},
						ClusterDomain: "cluster.local", APIServerFQDN: "myaks-abc.hcp.westeurope.azmk8s.io",
						IMDS: &off, Extra: []string{".corp.example"},
					},
					CA: CAConfig{ConfigMap: "corporate-ca", Key: "bundle.pem", VolumeName: "corp-ca", MountPath: "/etc/corp", Env: []string{"SSL_CERT_FILE"}},
				}
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := LoadConfig(tc.file)
			if err != nil {
				t.Fatalf("LoadConfig: %v", err)
			}
			if want := tc.want(); !reflect.DeepEqual(got, want) {
				t.Errorf("got  %+v\nwant %+v", got, want)
			}
		})
	}
}

// New validates too, so a caller that builds Config in code cannot skip it.
func TestNewRejectsInvalidConfig(t *testing.T) {
	_, err := New(DefaultConfig(), zap.NewNop(), prometheus.NewRegistry())
	const want = "inject config: proxy.http_proxy: required, e.g. http://10.2.128.100:3128"
	if err == nil || err.Error() != want {
		t.Errorf("New: %v, want %q", err, want)
	}
}

// Two servers on one registry is a wiring bug; it must be an error, not a panic.
func TestNewDuplicateRegistration(t *testing.T) {
	reg := prometheus.NewRegistry()
	if _, err := New(testConfig(), zap.NewNop(), reg); err != nil {
		t.Fatal(err)
	}
	_, err := New(testConfig(), zap.NewNop(), reg)
	if err == nil || !strings.HasPrefix(err.Error(), "register metrics: duplicate metrics collector registration attempted") {
		t.Errorf("second New: %v, want a duplicate registration error", err)
	}
}
