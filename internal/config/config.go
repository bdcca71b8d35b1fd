// Package config holds egressd's single typed configuration and its
// loader. Sections live in the packages that own them (proxy.Config,
// acl.Config, tlsinspect.Config); this package only decodes strictly,
// fills defaults, validates, and points every error at its YAML line.
package config

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/egressd/egressd/acl"
	"github.com/egressd/egressd/proxy"
	"github.com/egressd/egressd/tlsinspect"
)

// Config is the whole egressd config file.
type Config struct {
	Proxy proxy.Config `yaml:"proxy"`
	Admin AdminConfig  `yaml:"admin"`
	Log   LogConfig    `yaml:"log"`
	// The policy keys (tenants, rulesets, default_tenant, report_only) sit
	// at the top level: they are what operators edit most.
	ACL acl.Config        `yaml:",inline"`
	TLS tlsinspect.Config `yaml:"tls_inspection"`
}

// AdminConfig is the `admin:` section: probes, metrics and pprof, on a port
// that never expects a PROXY header.
type AdminConfig struct {
	// Listen is the admin address. Default ":9090".
	Listen string `yaml:"listen"`
	// Pprof exposes /debug/pprof/ on the admin port. Default false.
	Pprof bool `yaml:"pprof"`
}

// LogConfig is the `log:` section.
type LogConfig struct {
	// Format of the access log: json (default), squid (Squid's native
	// access.log line, for existing SIEM parsers) or squid_extended
	// (Squid's ten fields, then tenant=, link_id=, lb=, decision=, rule=
	// and request_id=; `egressd replay` reads it).
	Format string `yaml:"format"`
	// Level of the event log: debug, info (default), warn, error.
	Level string `yaml:"level"`
	// Output of the access log: stdout (default), stderr, or a file path.
	Output string `yaml:"output"`
	// FlushInterval is how long access log lines may wait in a 256 KiB
	// buffer before they are written. Default 0s: every line is written
	// before the next request of its connection, so a crash (OOM kill,
	// SIGKILL) loses no audit record. A value such as 200ms takes one of
	// the five syscalls of a small proxied request off the request path
	// (issue 18) at the price of losing at most that much log on a crash.
	FlushInterval *time.Duration `yaml:"flush_interval"`
}

// DefaultLogFlushInterval is log.flush_interval when it is not set: an
// audit log loses nothing by default.
const DefaultLogFlushInterval time.Duration = 0

//go:embed default.yaml
var defaultYAML []byte

// Default returns the embedded development config: loopback only, PROXY
// header optional, one demo tenant that may reach loopback origins.
func Default() (Config, error) { return Parse(defaultYAML, "embedded default config") }

// DefaultYAML is the embedded development config's source text.
func DefaultYAML() []byte { return bytes.Clone(defaultYAML) }

// Load reads, decodes, defaults and validates the config file at path.
// It does no network I/O.
func Load(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("read config: %w", err)
	}
	return Parse(data, path)
}

// Parse is Load for bytes already read; name prefixes every message.
func Parse(data []byte, name string) (Config, error) {
	return ParseAll(data, name)
}

// SetDefaults fills every unset field with its documented default.
func (c *Config) SetDefaults() {
	c.Proxy.SetDefaults()
	if c.Admin.Listen == "" {
		c.Admin.Listen = ":9090"
	}
	if c.Log.Format == "" {
		c.Log.Format = "json"
	}
	if c.Log.Level == "" {
		c.Log.Level = "info"
	}
	if c.Log.Output == "" {
		c.Log.Output = "stdout"
	}
	if c.Log.FlushInterval == nil {
		d := DefaultLogFlushInterval
		c.Log.FlushInterval = &d
	}
}

// Validate checks every section; messages start with their YAML path.
func (c *Config) Validate() error {
	var errs []error
	errs = append(errs, c.Proxy.Validate(), c.ACL.Validate(), c.TLS.Validate())
	switch c.Log.Format {
	case "json", "squid", "squid_extended":
	default:
		errs = append(errs, fmt.Errorf("log.format: %q: must be json, squid or squid_extended", c.Log.Format))
	}
	if d := c.Log.FlushInterval; d != nil && (*d < 0 || *d > 10*time.Second) {
		errs = append(errs, fmt.Errorf("log.flush_interval: %s: must be between 0s (unbuffered) and 10s", *d))
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("log.level: %q: must be debug, info, warn or error", c.Log.Level))
	}
	if !c.TLS.Enabled() {
		for i, t := range c.ACL.Tenants {
			if t.TLSInspection.Mode == "bump" {
				// Without a CA nothing can be bumped, so every tunnel of the
				// tenant would be spliced and its path and method rules
				// would silently never apply.
				errs = append(errs, fmt.Errorf("tenants[%d].tls_inspection.mode: %q: tenant %s inspects TLS but no inspection CA is configured; set the top-level tls_inspection.ca_cert and ca_key, or use mode off", i, t.TLSInspection.Mode, t.Name))
			}
		}
	}
	if c.Admin.Listen == c.Proxy.Listen {
		errs = append(errs, fmt.Errorf("admin.listen: %q: must differ from proxy.listen (probes send no PROXY header)", c.Admin.Listen))
	}
	return errors.Join(errs...)
}

// located prefixes each joined error with file:line, found by walking the
// YAML path the message starts with ("tenants[2].rules[0]: ...").
// leaves flattens joined errors at any depth: validation joins per
// section, and ParseAll joins those again.
func leaves(err error) []error {
	if err == nil {
		return nil
	}
	j, ok := err.(interface{ Unwrap() []error })
	if !ok {
		return []error{err}
	}
	var out []error
	for _, e := range j.Unwrap() {
		out = append(out, leaves(e)...)
	}
	return out
}

func located(err error, root *yaml.Node, name string) error {
	list := leaves(err)
	out := make([]error, 0, len(list))
	for _, e := range list {
		msg := e.Error()
		path, _, _ := strings.Cut(msg, ":")
		if line := lineOf(root, path); line > 0 {
			out = append(out, fmt.Errorf("%s:%d: %w", name, line, e))
		} else {
			out = append(out, fmt.Errorf("%s: %w", name, e))
		}
	}
	return errors.Join(out...)
}

// lineOf returns the line of the node at a dotted path with [i] indexes,
// or of the deepest ancestor that exists (a missing key points at its parent).
func lineOf(root *yaml.Node, path string) int {
	n := root
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	line := 0
	for _, seg := range splitPath(path) {
		next := child(n, seg)
		if next == nil {
			break
		}
		n, line = next, next.Line
	}
	return line
}

func splitPath(p string) []string {
	var segs []string
	for _, part := range strings.Split(p, ".") {
		for part != "" {
			i := strings.IndexByte(part, '[')
			if i < 0 {
				segs = append(segs, part)
				break
			}
			if i > 0 {
				segs = append(segs, part[:i])
			}
			j := strings.IndexByte(part, ']')
			if j < i {
				return segs
			}
			segs = append(segs, part[i:j+1])
			part = part[j+1:]
		}
	}
	return segs
}

func child(n *yaml.Node, seg string) *yaml.Node {
	if strings.HasPrefix(seg, "[") {
		i, err := strconv.Atoi(strings.Trim(seg, "[]"))
		if err != nil || n.Kind != yaml.SequenceNode || i < 0 || i >= len(n.Content) {
			return nil
		}
		return n.Content[i]
	}
	if n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == seg {
			return n.Content[i+1]
		}
	}
	return nil
}

// Files are the paths the config reads besides itself: password files,
// parent proxy credentials, the inspection CA, its chain and the upstream
// roots. A reload follows
// their content as well as the config's, so a rotated Secret takes effect
// without an edit to the config.
func (c Config) Files() []string {
	var files []string
	for _, t := range c.ACL.Tenants {
		for _, u := range t.Users {
			if u.PasswordFile != "" {
				files = append(files, u.PasswordFile)
			}
		}
	}
	// Parent proxy credentials are read at Compile like password files.
	// Deny feeds are not here: they can be large, and the reloader stamps
	// them by size and time instead (acl.Config.FeedFiles).
	for _, t := range c.ACL.Tenants {
		if u := t.UpstreamProxy; u != nil && u.CredentialsFile != "" {
			files = append(files, u.CredentialsFile)
		}
		for _, r := range t.Rules {
			if u := r.UpstreamProxy; u != nil && u.CredentialsFile != "" {
				files = append(files, u.CredentialsFile)
			}
		}
	}
	// Sorted: the reloader hashes the list in order, and map order varies.
	for _, name := range slices.Sorted(maps.Keys(c.ACL.Rulesets)) {
		for _, r := range c.ACL.Rulesets[name] {
			if u := r.UpstreamProxy; u != nil && u.CredentialsFile != "" {
				files = append(files, u.CredentialsFile)
			}
		}
	}
	for _, f := range []string{c.TLS.CACert, c.TLS.CAKey, c.TLS.Chain} {
		if f != "" {
			files = append(files, f)
		}
	}
	return append(files, c.TLS.UpstreamRoots...)
}
