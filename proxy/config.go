package proxy

import (
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"time"

	"github.com/egressd/egressd/acl"
)

// ProxyProtocol says whether the proxy port expects a PROXY protocol header.
type ProxyProtocol string

const (
	// PPRequired: every connection must come from trusted_proxies and start
	// with a header; anything else is closed before a byte is read as HTTP.
	// This is what the AKS deployment behind a Private Link Service uses.
	PPRequired ProxyProtocol = "required"
	// PPOptional: trusted peers may send a header; a header from any other
	// peer closes the connection. Connections without one use the socket
	// address as the client identity.
	PPOptional ProxyProtocol = "optional"
	// PPOff: no header is parsed; the socket address is the identity on purpose.
	PPOff ProxyProtocol = "off"
)

// Config is the `proxy:` section. Every duration is a Go duration string ("5s").
type Config struct {
	// Listen is the proxy port. Default ":3128".
	Listen string `yaml:"listen"`
	// ProxyProtocol is required | optional | off. Default required.
	ProxyProtocol ProxyProtocol `yaml:"proxy_protocol"`
	// TrustedProxies are the CIDRs allowed to send a PROXY header (the PLS NAT
	// subnet and the Azure probe sources). Required unless proxy_protocol is off.
	TrustedProxies []string `yaml:"trusted_proxies"`
	// ProxyHeaderTimeout bounds reading the PROXY header. Default 5s.
	ProxyHeaderTimeout time.Duration `yaml:"proxy_header_timeout"`
	// ReadHeaderTimeout bounds reading one request head. Default 10s.
	ReadHeaderTimeout time.Duration `yaml:"read_header_timeout"`
	// ClientIdleTimeout closes an idle keep-alive client connection. Default 120s.
	ClientIdleTimeout time.Duration `yaml:"client_idle_timeout"`
	// UpstreamIdleTimeout closes an idle pooled upstream connection. Default 60s.
	UpstreamIdleTimeout time.Duration `yaml:"upstream_idle_timeout"`
	// TunnelIdleTimeout closes a CONNECT tunnel with no bytes either way. Default 1h.
	TunnelIdleTimeout time.Duration `yaml:"tunnel_idle_timeout"`
	// MaxHeaderBytes bounds a request head (request line plus headers). Default 64 KiB.
	MaxHeaderBytes int `yaml:"max_header_bytes"`
	// DialTimeout bounds DNS plus TCP connect to an upstream. Default 10s.
	DialTimeout time.Duration `yaml:"dial_timeout"`
	// ResponseHeaderTimeout bounds the wait for an upstream response head. Default 60s.
	ResponseHeaderTimeout time.Duration `yaml:"response_header_timeout"`
	// MaxConnections bounds concurrent client connections; above it new ones
	// get a 503 and are closed. Default 10000.
	MaxConnections int `yaml:"max_connections"`
	// TenantConnectionShare is the fraction of MaxConnections one tenant
	// (and the unrecognised callers, together) may hold open, so a tenant
	// parking idle sockets leaves the rest to its neighbours and to load
	// balancer probes. A tenant's limits.max_connections can only lower
	// its cap. With many tenants that may misbehave together, lower it.
	// 0 means the default; 1 turns the share off. Default 0.5.
	TenantConnectionShare float64 `yaml:"tenant_connection_share"`
	// RevokeOnReload re-decides every open tunnel and keep-alive client
	// connection against a reloaded policy and closes those it now denies:
	// the kill switch an incident needs. Default true.
	RevokeOnReload *bool `yaml:"revoke_on_reload"`
	// TCPKeepAlive is the keepalive probe interval on both legs. PLS drops
	// idle flows after about 4 minutes, so the default is 60s. Default 60s.
	TCPKeepAlive time.Duration `yaml:"tcp_keepalive"`
	// MaxIdleUpstreamPerHost bounds pooled idle upstream connections per
	// origin. Default 32.
	MaxIdleUpstreamPerHost int `yaml:"max_idle_upstream_per_host"`
	// DrainTimeout is how long in-flight requests and tunnels may run after
	// SIGTERM. Keep terminationGracePeriodSeconds above it. Default 25s.
	DrainTimeout time.Duration `yaml:"drain_timeout"`
	// DrainDelay is how long, after SIGTERM, egressd keeps accepting while
	// readiness and load balancer probes already fail, so the load balancer
	// takes the node out before the listener closes. Keep
	// terminationGracePeriodSeconds above preStop + drain_delay +
	// drain_timeout. Default 0s.
	DrainDelay time.Duration `yaml:"drain_delay"`
	// Via is the pseudonym in the Via header. Default "egressd".
	Via string `yaml:"via"`
	// H2MaxConcurrentStreams bounds the open streams of one HTTP/2 client
	// inside an inspected tunnel (RFC 9113 §5.1.2), and so the handler
	// goroutines it can hold. Default 100.
	H2MaxConcurrentStreams uint32 `yaml:"h2_max_concurrent_streams"`
	// H2IdleTimeout closes an inspected HTTP/2 connection with no open
	// stream for this long. Default 120s.
	H2IdleTimeout time.Duration `yaml:"h2_idle_timeout"`
	// Upgrades are the protocols a request may switch to with Upgrade
	// (RFC 9110 §7.8). Any other Upgrade is removed and the request is
	// served as plain HTTP/1.1, as Squid does: h2c would hide its streams
	// from the policy, and an unknown protocol from the log. [] allows
	// none. Default [websocket].
	Upgrades []string `yaml:"upgrades"`
}

// SetDefaults fills unset fields with the documented defaults.
func (c *Config) SetDefaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	if c.Listen == "" {
		c.Listen = ":3128"
	}
	if c.ProxyProtocol == "" {
		c.ProxyProtocol = PPRequired
	}
	def(&c.ProxyHeaderTimeout, 5*time.Second)
	def(&c.ReadHeaderTimeout, 10*time.Second)
	def(&c.ClientIdleTimeout, 120*time.Second)
	def(&c.UpstreamIdleTimeout, 60*time.Second)
	def(&c.TunnelIdleTimeout, time.Hour)
	def(&c.DialTimeout, 10*time.Second)
	def(&c.ResponseHeaderTimeout, 60*time.Second)
	def(&c.TCPKeepAlive, 60*time.Second)
	def(&c.DrainTimeout, 25*time.Second)
	def(&c.H2IdleTimeout, 120*time.Second)
	if c.Upgrades == nil {
		c.Upgrades = []string{"websocket"}
	}
	if c.H2MaxConcurrentStreams == 0 {
		c.H2MaxConcurrentStreams = 100
	}
	if c.MaxHeaderBytes == 0 {
		c.MaxHeaderBytes = 64 << 10
	}
	if c.MaxConnections == 0 {
		c.MaxConnections = 10000
	}
	if c.TenantConnectionShare == 0 {
		c.TenantConnectionShare = 0.5
	}
	if c.RevokeOnReload == nil {
		on := true
		c.RevokeOnReload = &on
	}
	if c.MaxIdleUpstreamPerHost == 0 {
		c.MaxIdleUpstreamPerHost = 32
	}
	if c.Via == "" {
		c.Via = "egressd"
	}
}

// Validate checks the section without changing it. Messages start with
// the YAML path so the loader can point at the line.
func (c *Config) Validate() error {
	var errs []error
	bad := func(path, format string, args ...any) {
		errs = append(errs, fmt.Errorf("proxy.%s: "+format, append([]any{path}, args...)...))
	}
	switch c.ProxyProtocol {
	case PPRequired, PPOptional, PPOff:
	default:
		bad("proxy_protocol", "%q: must be required, optional or off", c.ProxyProtocol)
	}
	for i, s := range c.TrustedProxies {
		if _, err := acl.ParsePrefix(s); err != nil {
			bad(fmt.Sprintf("trusted_proxies[%d]", i), "%q: %v", s, err)
		}
	}
	if c.ProxyProtocol == PPRequired && len(c.TrustedProxies) == 0 {
		bad("trusted_proxies", "required when proxy_protocol is required: list the PLS NAT subnet and the load balancer probe sources")
	}
	positive := map[string]time.Duration{
		"proxy_header_timeout": c.ProxyHeaderTimeout, "read_header_timeout": c.ReadHeaderTimeout,
		"client_idle_timeout": c.ClientIdleTimeout, "upstream_idle_timeout": c.UpstreamIdleTimeout,
		"tunnel_idle_timeout": c.TunnelIdleTimeout, "dial_timeout": c.DialTimeout,
		"response_header_timeout": c.ResponseHeaderTimeout, "tcp_keepalive": c.TCPKeepAlive,
		"drain_timeout": c.DrainTimeout, "drain_delay": c.DrainDelay, "h2_idle_timeout": c.H2IdleTimeout,
	}
	for _, k := range slices.Sorted(maps.Keys(positive)) {
		if positive[k] < 0 {
			bad(k, "%s: must not be negative", positive[k])
		}
	}
	if c.TCPKeepAlive >= 240*time.Second {
		bad("tcp_keepalive", "%s: must be well under the Private Link idle cutoff (about 240s)", c.TCPKeepAlive)
	}
	if c.MaxHeaderBytes < 1024 || c.MaxHeaderBytes > 1<<20 {
		bad("max_header_bytes", "%d: must be between 1024 and 1048576", c.MaxHeaderBytes)
	}
	if c.MaxConnections < 1 {
		bad("max_connections", "%d: must be at least 1", c.MaxConnections)
	}
	if c.TenantConnectionShare < 0 || c.TenantConnectionShare > 1 {
		bad("tenant_connection_share", "%g: must be a fraction above 0 and at most 1", c.TenantConnectionShare)
	}
	if c.MaxIdleUpstreamPerHost < 0 {
		bad("max_idle_upstream_per_host", "%d: must not be negative", c.MaxIdleUpstreamPerHost)
	}
	if c.H2MaxConcurrentStreams > 1000 {
		bad("h2_max_concurrent_streams", "%d: must be at most 1000", c.H2MaxConcurrentStreams)
	}
	return errors.Join(errs...)
}

// provisioned is the section turned into the typed values the connection
// path reads, once per Server: strings are parsed here and nowhere else.
type provisioned struct {
	trusted []netip.Prefix
}

func (c *Config) provision() (provisioned, error) {
	var pv provisioned
	for i, s := range c.TrustedProxies {
		p, err := acl.ParsePrefix(s)
		if err != nil {
			return provisioned{}, fmt.Errorf("proxy.trusted_proxies[%d]: %q: %w", i, s, err)
		}
		pv.trusted = append(pv.trusted, p)
	}
	return pv, nil
}

func (pv *provisioned) isTrusted(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range pv.trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
