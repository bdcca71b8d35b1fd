package inject

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"gopkg.in/yaml.v3"
)

// Failure policies, spelled as in MutatingWebhookConfiguration so the two
// settings read the same in review.
const (
	FailurePolicyFail   = "Fail"
	FailurePolicyIgnore = "Ignore"
)

// Config is the whole `egressd-inject -config FILE` file.
type Config struct {
	// Listen is the HTTPS address serving /mutate and /healthz. Default ":8443".
	Listen string `yaml:"listen"`
	// AdminListen is a plain-HTTP address serving /metrics and /healthz, so
	// Prometheus does not need to trust the webhook's serving CA.
	// Default ":9090"; "off" disables it.
	AdminListen string `yaml:"admin_listen"`
	// TLS names the serving certificate files (a cert-manager Secret mount).
	TLS TLSConfig `yaml:"tls"`
	// MaxRequestBytes bounds an AdmissionReview body. Default 3 MiB, the
	// kube-apiserver's own request limit.
	MaxRequestBytes int64 `yaml:"max_request_bytes"`
	// ShutdownDelay keeps serving after the stop signal so the Service's
	// endpoints drop the pod before it stops answering. Default 0.
	ShutdownDelay time.Duration `yaml:"shutdown_delay"`
	// ShutdownTimeout bounds the drain of in-flight reviews. Default 10s.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
	// FailurePolicy is "Fail" (default) or "Ignore": the answer the webhook
	// itself gives when it cannot mutate a pod it should (for example an
	// undecodable pod object). Keep it equal to the MutatingWebhookConfiguration's
	// failurePolicy, which covers the cases where the webhook is unreachable.
	FailurePolicy string `yaml:"failure_policy"`
	// Selector is the set of labels a pod must carry, checked here as well as
	// in the webhook's objectSelector. Default {network: filtered}.
	Selector map[string]string `yaml:"selector"`
	// Override replaces proxy and CA variables a container sets explicitly.
	// Default false: explicit values win.
	Override bool `yaml:"override"`
	// Proxy is the egressd address the workload reaches through its private endpoint.
	Proxy ProxyConfig `yaml:"proxy"`
	// NoProxy builds the NO_PROXY list.
	NoProxy NoProxyConfig `yaml:"no_proxy"`
	// CA mounts the corporate CA bundle. Unset ConfigMap disables it.
	CA CAConfig `yaml:"ca"`
}

// TLSConfig names the PEM files of the serving certificate. They are read
// again whenever their modification time or size changes.
type TLSConfig struct {
	// CertFile defaults to /etc/egressd-inject/tls/tls.crt.
	CertFile string `yaml:"cert_file"`
	// KeyFile defaults to /etc/egressd-inject/tls/tls.key.
	KeyFile string `yaml:"key_file"`
}

// ProxyConfig holds the proxy URLs. Credentials in a URL are allowed but end
// up readable by anyone who can read the pod; the annotation redacts them.
type ProxyConfig struct {
	// HTTPProxy is required, e.g. http://10.2.128.100:3128.
	HTTPProxy string `yaml:"http_proxy"`
	// HTTPSProxy defaults to HTTPProxy: egressd serves CONNECT on the same port.
	HTTPSProxy string `yaml:"https_proxy"`
}

// NoProxyConfig lists what must bypass the proxy. Loopback (localhost,
// 127.0.0.1, ::1) is always included.
type NoProxyConfig struct {
	// ServiceCIDRs are the cluster's service ranges, e.g. 10.0.0.0/16.
	ServiceCIDRs []string `yaml:"service_cidrs"`
	// PodCIDRs are the cluster's pod ranges, e.g. 10.244.0.0/16.
	PodCIDRs []string `yaml:"pod_cidrs"`
	// ClusterDomain adds "."+ClusterDomain and ".svc". Default "cluster.local".
	ClusterDomain string `yaml:"cluster_domain"`
	// APIServerFQDN is the AKS control plane name
	// (e.g. myaks-abc123.hcp.westeurope.azmk8s.io); clients that resolve
	// the API server by name would otherwise send it through the proxy.
	APIServerFQDN string `yaml:"api_server_fqdn"`
	// IMDS adds 169.254.169.254 (Azure instance metadata and workload
	// identity token exchange must not leave the node). Default true.
	IMDS *bool `yaml:"imds"`
	// Extra entries are appended verbatim: domains, ".suffix" forms, IPs or CIDRs.
	Extra []string `yaml:"extra"`
}

// CAConfig describes the corporate CA bundle ConfigMap. The key must hold a
// complete bundle (public roots plus the corporate CA), because
// SSL_CERT_FILE and REQUESTS_CA_BUNDLE replace the trust store rather than
// extend it.
type CAConfig struct {
	// ConfigMap is the ConfigMap name in the pod's namespace. Empty disables
	// CA injection.
	ConfigMap string `yaml:"config_map"`
	// Key is the ConfigMap key holding the PEM bundle. Default "ca-bundle.crt"; it
	// is also the file name under MountPath.
	Key string `yaml:"key"`
	// VolumeName is reserved for the webhook in every selected pod: a
	// different volume of the same name is replaced. Default "egressd-inject-ca".
	VolumeName string `yaml:"volume_name"`
	// MountPath is the directory mounted read-only. Default /etc/egressd/ca.
	// A whole-directory mount (not subPath) so ConfigMap updates reach the pod.
	MountPath string `yaml:"mount_path"`
	// Env lists the variables set to the bundle's path. Default
	// SSL_CERT_FILE, NODE_EXTRA_CA_CERTS, REQUESTS_CA_BUNDLE.
	Env []string `yaml:"env"`
}

// DefaultConfig returns the defaults documented on each field. Proxy.HTTPProxy
// has no default and must be set.
func DefaultConfig() Config {
	imds := true
	return Config{
		Listen:          ":8443",
		AdminListen:     ":9090",
		TLS:             TLSConfig{CertFile: "/etc/egressd-inject/tls/tls.crt", KeyFile: "/etc/egressd-inject/tls/tls.key"},
		MaxRequestBytes: 3 << 20,
		ShutdownTimeout: 10 * time.Second,
		FailurePolicy:   FailurePolicyFail,
		Selector:        map[string]string{"network": "filtered"},
		NoProxy:         NoProxyConfig{ClusterDomain: "cluster.local", IMDS: &imds},
		CA: CAConfig{
			Key:        "ca-bundle.crt",
			VolumeName: "egressd-inject-ca",
			MountPath:  "/etc/egressd/ca",
			Env:        []string{"SSL_CERT_FILE", "NODE_EXTRA_CA_CERTS", "REQUESTS_CA_BUNDLE"},
		},
	}
}

// LoadConfig reads path, decodes it strictly, applies defaults and validates.
func LoadConfig(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("read config: %w", err)
	}
	cfg, err := ParseConfig(data)
	if err != nil {
		return Config{}, fmt.Errorf("config %s: %w", path, err)
	}
	return cfg, nil
}

// ParseConfig is LoadConfig without the file: decode strictly, default, validate.
func ParseConfig(data []byte) (Config, error) {
	var cfg Config
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil {
		if errors.Is(err, io.EOF) {
			return Config{}, errors.New("config is empty")
		}
		return Config{}, fmt.Errorf("decode: %w", err)
	}
	// A second document would be silently ignored otherwise.
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return Config{}, errors.New("decode: config must be a single YAML document")
	}
	cfg.applyDefaults()
	if err := cfg.Validate(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// applyDefaults fills unset fields. It works field by field rather than
// decoding over DefaultConfig() because yaml.v3 merges into a pre-filled map,
// which would add the default selector label to a user's selector.
func (c *Config) applyDefaults() {
	d := DefaultConfig()
	setDefault(&c.Listen, d.Listen)
	setDefault(&c.AdminListen, d.AdminListen)
	setDefault(&c.TLS.CertFile, d.TLS.CertFile)
	setDefault(&c.TLS.KeyFile, d.TLS.KeyFile)
	setDefault(&c.MaxRequestBytes, d.MaxRequestBytes)
	setDefault(&c.ShutdownTimeout, d.ShutdownTimeout)
	setDefault(&c.FailurePolicy, d.FailurePolicy)
	if c.Selector == nil {
		c.Selector = d.Selector
	}
	setDefault(&c.Proxy.HTTPSProxy, c.Proxy.HTTPProxy)
	setDefault(&c.NoProxy.ClusterDomain, d.NoProxy.ClusterDomain)
	if c.NoProxy.IMDS == nil {
		c.NoProxy.IMDS = d.NoProxy.IMDS
	}
	setDefault(&c.CA.Key, d.CA.Key)
	setDefault(&c.CA.VolumeName, d.CA.VolumeName)
	setDefault(&c.CA.MountPath, d.CA.MountPath)
	if c.CA.Env == nil {
		c.CA.Env = d.CA.Env
	}
}

func setDefault[T comparable](field *T, def T) {
	var zero T
	if *field == zero {
		*field = def
	}
}
