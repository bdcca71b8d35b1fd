package tlsinspect

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Defaults and bounds for Config. The leaf bounds exist because a leaf is
// re-minted cheaply and lives only in memory: a long validity adds risk if
// one leaks and buys nothing.
const (
	DefaultLeafValidity = 24 * time.Hour
	MinLeafValidity     = time.Hour
	MaxLeafValidity     = 30 * 24 * time.Hour
	DefaultCacheSize    = 10000
	MaxCacheSize        = 100000
	// LeafBackdate is subtracted from NotBefore so clients whose clocks run
	// a little behind still accept a freshly minted leaf.
	LeafBackdate = time.Hour
)

// yamlSection prefixes every configuration error so operators can find the key.
const yamlSection = "tls_inspection"

// Config is the top-level `tls_inspection:` section of egressd's config.
// The zero value disables inspection.
type Config struct {
	// CACert is the path of the PEM inspection CA certificate (typically a
	// Kubernetes Secret mount). Setting it enables inspection.
	CACert string `yaml:"ca_cert"`
	// CAKey is the path of the PEM private key for CACert: RSA (2048 bits or
	// more), ECDSA (P-256, P-384, P-521) or Ed25519, unencrypted, in PKCS#8,
	// PKCS#1 or SEC 1 form.
	CAKey string `yaml:"ca_key"`
	// Chain is an optional path of PEM intermediates sent to clients after
	// the leaf (and after the CA certificate itself when that is not
	// self-signed).
	Chain string `yaml:"chain"`
	// UpstreamRoots are PEM files of extra roots trusted when verifying
	// upstream servers, in addition to the system roots.
	UpstreamRoots []string `yaml:"upstream_roots"`
	// LeafValidity is how long a minted leaf is valid from the moment it is
	// minted; NotBefore is additionally backdated by LeafBackdate (1h).
	// Default 24h, allowed 1h to 720h. Leaves are cached for half of their
	// remaining lifetime.
	LeafValidity time.Duration `yaml:"leaf_validity"`
	// CacheSize bounds the number of cached leaves (LRU). Default 10000,
	// maximum 100000; an entry costs about 4 KiB of heap (leaf, parsed
	// certificate and key).
	CacheSize int `yaml:"cache_size"`
	// NonTLS says what to do when a CONNECT meant for bumping carries
	// bytes that are not a TLS ClientHello: "refuse" (default) or "splice".
	NonTLS string `yaml:"non_tls"`
	// InsecureUpstream lists exact host names whose upstream certificate is
	// not verified. Off by default; every use should be logged loudly.
	InsecureUpstream []string `yaml:"insecure_upstream"`
}

// NonTLSMode is what the proxy does with non-TLS bytes in a CONNECT that
// policy wanted to bump.
type NonTLSMode uint8

const (
	// NonTLSRefuse closes the tunnel; it is the zero value so an unset mode fails closed.
	NonTLSRefuse NonTLSMode = iota
	// NonTLSSplice forwards the bytes uninspected, as a plain tunnel.
	NonTLSSplice
)

func (m NonTLSMode) String() string {
	if m == NonTLSSplice {
		return "splice"
	}
	return "refuse"
}

func parseNonTLS(s string) (NonTLSMode, bool) {
	switch s {
	case "", "refuse":
		return NonTLSRefuse, true
	case "splice":
		return NonTLSSplice, true
	}
	return NonTLSRefuse, false
}

// Enabled reports whether inspection is configured at all.
func (c *Config) Enabled() bool { return c.CACert != "" }

// Validate checks the section without touching the file system; Load does
// the file checks. Every message starts with the YAML path of the key.
func (c *Config) Validate() error {
	var errs []error
	add := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s.%s: %s", yamlSection, key, fmt.Sprintf(format, args...)))
	}
	if !c.Enabled() {
		// A key or chain without a certificate would silently leave
		// inspection off; say so instead.
		if c.CAKey != "" || c.Chain != "" {
			add("ca_cert", "required when ca_key or chain is set")
		}
	} else if c.CAKey == "" {
		add("ca_key", "required when ca_cert is set")
	}
	if c.LeafValidity < 0 {
		add("leaf_validity", "%s must not be negative", c.LeafValidity)
	} else if c.LeafValidity != 0 && c.LeafValidity < MinLeafValidity {
		add("leaf_validity", "%s is shorter than the %s minimum", c.LeafValidity, MinLeafValidity)
	} else if c.LeafValidity > MaxLeafValidity {
		add("leaf_validity", "%s is longer than the %s maximum", c.LeafValidity, MaxLeafValidity)
	}
	if c.CacheSize < 0 {
		add("cache_size", "%d must not be negative", c.CacheSize)
	} else if c.CacheSize > MaxCacheSize {
		add("cache_size", "%d is larger than the %d maximum", c.CacheSize, MaxCacheSize)
	}
	if _, ok := parseNonTLS(c.NonTLS); !ok {
		add("non_tls", "%q is not one of \"refuse\", \"splice\"", c.NonTLS)
	}
	for n, p := range c.UpstreamRoots {
		if strings.TrimSpace(p) == "" {
			add(fmt.Sprintf("upstream_roots[%d]", n), "empty path")
		}
	}
	for n, h := range c.InsecureUpstream {
		if strings.Contains(h, "*") {
			add(fmt.Sprintf("insecure_upstream[%d]", n), "%q: exact host names only, no wildcards", h)
			continue
		}
		if _, err := normalizeHost(h); err != nil {
			add(fmt.Sprintf("insecure_upstream[%d]", n), "%q: %v", h, err)
		}
	}
	return errors.Join(errs...)
}

func (c *Config) leafValidity() time.Duration {
	if c.LeafValidity == 0 {
		return DefaultLeafValidity
	}
	return c.LeafValidity
}

func (c *Config) cacheSize() int {
	if c.CacheSize == 0 {
		return DefaultCacheSize
	}
	return c.CacheSize
}
