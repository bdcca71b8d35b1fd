// Package acl is egressd's policy: which tenant a connection belongs to and
// where that tenant may go. It is pure: no network I/O and no logging, so
// every decision can be table-tested and fuzzed. The only clock is the
// expiry of cached credential failures.
//
// # Tenant recognition
//
// Decide recognises a caller in this order; the first step that matches wins:
//
//  1. LinkID: a tenant listing Identity.LinkID, if its nat_cidrs are empty
//     or contain Identity.LB (the PLS NAT address the connection came from).
//  2. Credentials: the tenant of the Basic-auth user named.
//  3. source_cidrs: the longest range containing Identity.Client, but only
//     when the connection has no LinkID, because consumer VNets overlap and
//     behind a private endpoint an address proves nothing.
//  4. default_tenant.
//
// Otherwise the request is denied with ReasonNoTenant and rule "no-tenant".
// Credentials never move a caller between tenants: when the network
// identifies tenant A and the credentials name a user of tenant B, they are
// treated exactly as a name nobody configured (same answer, same bcrypt
// work), so tenant A cannot learn which names tenant B has. A tenant with
// require_auth, or with users, answers missing or wrong credentials with
// AuthRequired (407); a tenant without users ignores credentials.
//
// # Rules
//
// A tenant's rules are tried in order and the first match wins; when none
// matches, the tenant's default applies (deny unless "allow"). Domain
// patterns never match an IP-literal target; cidrs match IP-literal targets
// in Decide and the address actually dialed in CheckDial, the SSRF guard.
//
// # Report-only
//
// Global or per-tenant report_only turns rule and default denies into
// Action Allow with WouldDeny. It does not soften auth failures, unknown
// callers or the SSRF guard on internal addresses; see Decide and CheckDial.
package acl

import "net/netip"

// Identity is who is calling, as far as the transport can tell. The proxy
// fills LinkID/Client/LB from the PROXY protocol header once per connection;
// Tenant is filled in by Policy.Decide.
type Identity struct {
	// LinkID is the Azure private endpoint LinkID from TLV 0xEE/0x01.
	LinkID    uint32
	HasLinkID bool
	// Client is the original source from the PROXY header, or the socket
	// peer when proxy_protocol is off (on purpose: then the socket is the identity).
	Client netip.AddrPort
	// LB is the socket peer: a PLS NAT address (or node address) behind Azure.
	LB netip.AddrPort
}

// Credentials are proxy Basic credentials taken from Proxy-Authorization.
// Present is false when the request carried none. Never log Password.
type Credentials struct {
	User, Password string
	Present        bool
}

// Target is where a request wants to go, already parsed and normalised by the proxy.
type Target struct {
	// Scheme is "http" for absolute-form requests, "https" for CONNECT
	// (and for requests seen inside an inspected tunnel).
	Scheme string
	// Host is a lower-case domain without trailing dot, or an IP literal in
	// canonical form when Addr is valid.
	Host string
	Addr netip.Addr // valid when the target was given as an IP literal
	Port uint16
	// Method is the HTTP method, "CONNECT" for tunnels.
	Method string
	// Path is the request path when visible (plain HTTP or inspected TLS), else "".
	Path string
}

// Action is what the proxy must do with a request.
type Action uint8

const (
	// Deny is the zero value so an unset Decision fails closed.
	Deny Action = iota
	Allow
	// AuthRequired asks the client for proxy credentials (407).
	AuthRequired
)

func (a Action) String() string {
	switch a {
	case Allow:
		return "allow"
	case AuthRequired:
		return "auth_required"
	default:
		return "deny"
	}
}

// Reason says why a Decision came out as it did. It is a metric label, so
// the set is closed.
type Reason uint8

const (
	ReasonNone     Reason = iota // unset; treated as deny by the proxy
	ReasonRule                   // a named rule matched (see Decision.Rule)
	ReasonDefault                // no rule matched; the tenant's default applied
	ReasonNoTenant               // no tenant recognised and no default_tenant
	ReasonAuth                   // credentials missing or wrong
	ReasonSSRF                   // destination address is internal and not explicitly allowed
)

func (r Reason) String() string {
	switch r {
	case ReasonRule:
		return "rule"
	case ReasonDefault:
		return "default"
	case ReasonNoTenant:
		return "no-tenant"
	case ReasonAuth:
		return "auth"
	case ReasonSSRF:
		return "ssrf"
	default:
		return "none"
	}
}

// Decision is the outcome of a policy evaluation. The zero value denies.
type Decision struct {
	Action Action
	Reason Reason
	// Tenant is the recognised tenant name, "" when none.
	Tenant string
	// Rule is the matched rule's name, "default", "ssrf", "no-tenant" or "auth".
	Rule string
	// WouldDeny is set in report-only mode: the policy denied but Action is
	// Allow so traffic passes; the proxy logs decision "would_deny".
	WouldDeny bool
	// User is the proxy user whose password verified, "" otherwise. Only
	// this name may be logged: a name a client merely sent (ignored by a
	// tenant without users, or rejected) proves nothing about who called.
	User string
	// Upstream is the parent proxy the allowed traffic goes through, nil
	// to dial the destination directly.
	Upstream *UpstreamProxy
}
