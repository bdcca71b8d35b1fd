package acl

import "time"

// Config is the policy section of egressd's config file. internal/config
// inlines it at the top level, so its keys are `tenants:`, `rulesets:`,
// `default_tenant:` and `report_only:`. For example:
//
//	rulesets:
//	  aks:
//	    - {name: mcr, domains: [mcr.microsoft.com, .data.mcr.microsoft.com], ports: ["443"]}
//	tenants:
//	  - name: team-a
//	    link_ids: [1001]
//	    nat_cidrs: [10.0.1.0/28]      # the PLS NAT range this LinkID arrives through
//	    rules:
//	      - ruleset: aks
//	      - {name: github, domains: [.github.com], ports: ["443"]}
//	      - {name: no-posts, action: deny, domains: [.example.com], methods: [POST]}
//	      - {name: app-db, cidrs: [10.1.0.0/16], ports: ["5432"]}  # explicit internal allow
//	  - name: build
//	    source_cidrs: [192.168.10.0/24]  # only for callers without a LinkID
//	    require_auth: true
//	    users: [{name: ci, password_file: /etc/egressd/users/ci}]
//	    report_only: true
//	    default: deny
type Config struct {
	Tenants []TenantConfig `yaml:"tenants"`
	// Rulesets are named rule lists that tenants splice into their rules
	// with `- ruleset: NAME`, e.g. the destinations AKS itself needs.
	Rulesets map[string][]RuleConfig `yaml:"rulesets"`
	// DefaultTenant receives callers no tenant recognises. Empty (the
	// default) denies them with 403 and rule "no-tenant".
	DefaultTenant string `yaml:"default_tenant"`
	// ReportOnly turns every rule or default deny into an allowed request
	// logged as would_deny. Default false.
	ReportOnly bool `yaml:"report_only"`
	// DenyFeeds are blocklists applied to every tenant before its rules;
	// a match is denied with rule "feed/NAME". See DenyFeedConfig.
	DenyFeeds []DenyFeedConfig `yaml:"deny_feeds"`
}

// TenantConfig describes one consumer and where it may go.
type TenantConfig struct {
	// Name is the tenant's label in logs and metrics: letters, digits,
	// '.', '_' and '-', at most 63 characters, not "unknown".
	Name string `yaml:"name"`
	// LinkIDs are the Azure private endpoint LinkIDs of this consumer.
	LinkIDs []uint32 `yaml:"link_ids"`
	// NATCIDRs, when set, scope LinkIDs to the PLS they arrive through: a
	// LinkID only counts when the socket peer (Identity.LB) is inside one of
	// these ranges, because LinkID uniqueness across PLSs is not documented.
	NATCIDRs []string `yaml:"nat_cidrs"`
	// SourceCIDRs match the PROXY-header client address, but only for
	// connections without a LinkID: consumer VNets overlap, so behind a
	// private endpoint an address proves nothing.
	SourceCIDRs []string `yaml:"source_cidrs"`
	// Users are Basic proxy credentials; each user belongs to this tenant only.
	Users []UserConfig `yaml:"users"`
	// RequireAuth makes credentials mandatory (407 without them). Default false.
	RequireAuth bool `yaml:"require_auth"`
	// Rules are evaluated in order; the first match wins.
	Rules []RuleConfig `yaml:"rules"`
	// Default is "deny" (the default) or "allow": what happens when no rule matches.
	Default string `yaml:"default"`
	// ReportOnly is the per-tenant form of Config.ReportOnly. Default false.
	ReportOnly bool `yaml:"report_only"`
	// Limits bound this tenant's share of the proxy. Zero values mean unlimited.
	Limits LimitsConfig `yaml:"limits"`
	// TLSInspection controls whether CONNECT tunnels are decrypted.
	TLSInspection TLSInspectionConfig `yaml:"tls_inspection"`
	// Region is the Azure region of the tenant's cluster ("westeurope"),
	// spliced into built-in rulesets that name regional endpoints such as
	// "*.hcp.<region>.azmk8s.io". Default "": such built-ins are refused.
	Region string `yaml:"region"`
	// Cloud picks the built-in rulesets' variant: "public" (default),
	// "china" (operated by 21Vianet) or "usgov".
	Cloud string `yaml:"cloud"`
	// UpstreamProxy sends the tenant's allowed traffic through a parent
	// proxy instead of dialing destinations directly. A rule's own
	// upstream_proxy wins over it. Default: none.
	UpstreamProxy *UpstreamProxyConfig `yaml:"upstream_proxy"`
}

// UpstreamProxyConfig is a parent proxy: CONNECT tunnels become a CONNECT
// to the parent, plain HTTP requests go to it in absolute form.
type UpstreamProxyConfig struct {
	// URL is "http://HOST:PORT" with an explicit port, no path and no
	// credentials (those come from CredentialsFile).
	URL string `yaml:"url"`
	// CredentialsFile holds "user:password" for the parent's Basic proxy
	// authentication, read at Compile (a mounted Secret). Optional.
	CredentialsFile string `yaml:"credentials_file"`
}

// UserConfig is one Basic-auth user. Exactly one of BCrypt and PasswordFile is set.
type UserConfig struct {
	Name string `yaml:"name"`
	// BCrypt is the bcrypt hash of the password ($2a$, $2b$ or $2y$).
	BCrypt string `yaml:"bcrypt"`
	// PasswordFile is read at Compile, typically a mounted Kubernetes Secret.
	// One trailing newline (\n or \r\n) is removed. If the remaining content
	// is a bcrypt hash it is used as one; otherwise it is the plain password.
	PasswordFile string `yaml:"password_file"`
}

// LimitsConfig is the YAML form of Limits.
type LimitsConfig struct {
	// MaxConnections caps the tenant's open client connections (a tunnel
	// is one), counted from the moment the tenant is known, idle
	// keep-alives included. 0 = only proxy.tenant_connection_share applies.
	MaxConnections int `yaml:"max_connections"`
	// Rate is new requests plus tunnels per second (token bucket). 0 = unlimited.
	Rate float64 `yaml:"rate"`
	// Burst is the bucket size. Default: Rate rounded up, at least 1.
	Burst int `yaml:"burst"`
}

// TLSInspectionConfig is the YAML form of a tenant's TLS inspection settings.
type TLSInspectionConfig struct {
	// Mode is "off" (the default) or "bump".
	Mode string `yaml:"mode"`
	// Bump lists the domains to inspect; empty means every domain not in Splice.
	Bump []string `yaml:"bump"`
	// Splice lists domains never inspected (certificate-pinning clients).
	// It wins over Bump.
	Splice []string `yaml:"splice"`
	// SNICheck is "enforce" (default), "report" or "off": what to do when
	// the TLS SNI disagrees with the CONNECT host.
	SNICheck string `yaml:"sni_check"`
	// LearnSplice, when set, splices a host for a while once this tenant's
	// clients have rejected the inspection certificate for it repeatedly
	// (pinned clients). Off by default; never applies to a host a bump
	// entry other than "*" names.
	LearnSplice *LearnSpliceConfig `yaml:"learn_splice"`
}

// LearnSpliceConfig is the YAML form of learned splicing.
type LearnSpliceConfig struct {
	// After is how many inspected handshakes for one host the tenant's
	// clients must refuse with a certificate alert (bad_certificate,
	// certificate_unknown, unknown_ca) before the host is spliced.
	// Default 3, at most 1000.
	After int `yaml:"after"`
	// TTL is how long a learned host stays spliced, and how long refusals
	// are remembered while they are being counted. Default 24h, from 1m
	// to 720h.
	TTL time.Duration `yaml:"ttl"`
}

// Learned-splice defaults and bounds (LearnSpliceConfig).
const (
	DefaultLearnAfter = 3
	MaxLearnAfter     = 1000
	DefaultLearnTTL   = 24 * time.Hour
	MinLearnTTL       = time.Minute
	MaxLearnTTL       = 30 * 24 * time.Hour
)

// RuleConfig is one rule, or a reference to a named ruleset.
type RuleConfig struct {
	// Name appears in decisions and logs. Default: the rule's YAML path,
	// e.g. "tenants[0].rules[3]" or "rulesets.aks[1]".
	Name string `yaml:"name"`
	// Ruleset splices the named ruleset here; no other field may be set.
	// "builtin/NAME" names one egressd ships (see `egressd rulesets`).
	Ruleset string `yaml:"ruleset"`
	// Action is "allow" (the default) or "deny".
	Action string `yaml:"action"`
	// Domains: "api.example.com" exact, "*.example.com" subdomains only,
	// ".example.com" the domain and its subdomains (Squid), "*" any domain.
	// Domains never match a target given as an IP literal.
	Domains []string `yaml:"domains"`
	// CIDRs match targets given as IP literals, and the address dialed
	// (see Policy.CheckDial).
	CIDRs []string `yaml:"cidrs"`
	// Ports are "443" or ranges "8000-8100". Empty means any port.
	Ports []string `yaml:"ports"`
	// Methods are HTTP methods, CONNECT included. Empty means any.
	Methods []string `yaml:"methods"`
	// Schemes are "http" and/or "https". Empty means any.
	Schemes []string `yaml:"schemes"`
	// Paths are prefixes of the request path; a rule with paths only matches
	// requests whose path is visible (plain HTTP or inspected TLS).
	Paths []string `yaml:"paths"`
	// UpstreamProxy sends what this allow rule lets out through a parent
	// proxy, overriding the tenant's upstream_proxy. Default: the tenant's.
	UpstreamProxy *UpstreamProxyConfig `yaml:"upstream_proxy"`
}

// Limits is a tenant's fairness budget. The zero value means unlimited.
type Limits struct {
	MaxConnections int
	Rate           float64 // new requests and tunnels per second
	Burst          int
}

// SNIMode says what to do when a tunnel's TLS SNI differs from its CONNECT host.
type SNIMode uint8

const (
	// SNIEnforce is the zero value so an unset mode is the strict one.
	SNIEnforce SNIMode = iota
	SNIReport
	SNIOff
)

func (m SNIMode) String() string {
	switch m {
	case SNIReport:
		return "report"
	case SNIOff:
		return "off"
	default:
		return "enforce"
	}
}

// Inspection is the TLS inspection verdict for one tenant and host.
type Inspection struct {
	Bump     bool
	SNICheck SNIMode
	// Learn is the tenant's learned-splice setting when it applies to this
	// bumped host; the zero value (After 0) means it does not.
	Learn LearnSplice
}

// LearnSplice is a compiled LearnSpliceConfig.
type LearnSplice struct {
	After int
	TTL   time.Duration
}
