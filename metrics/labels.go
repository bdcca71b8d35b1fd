package metrics

import (
	"context"
	"errors"
	"net"
	"syscall"

	"github.com/egressd/egressd/acl"
)

// Every label value below comes from a closed set, so each metric family has
// a fixed maximum number of series per tenant. Indices double as slots in
// the per-tenant caches in tenants.go.

// Kind is what a request was: a plain forward request or a CONNECT.
type Kind uint8

const (
	// KindHTTP is an absolute-form request, or a request seen inside an
	// inspected tunnel.
	KindHTTP Kind = iota
	// KindConnect is a CONNECT; its duration ends when the tunnel is answered.
	KindConnect
	numKinds
)

var kindNames = [numKinds]string{"http", "connect"}

func (k Kind) String() string {
	if k >= numKinds {
		return kindNames[KindHTTP]
	}
	return kindNames[k]
}

// Method classes keep the method label bounded: a client can send any token
// as a method (RFC 9110 §9.1), so only the common ones get their own value.
const (
	methodGET = iota
	methodHEAD
	methodPOST
	methodPUT
	methodDELETE
	methodCONNECT
	methodOther
	numMethods
)

var methodNames = [numMethods]string{"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OTHER"}

// methodClass is case-sensitive because methods are (RFC 9110 §9.1): "get"
// is not GET and lands in OTHER.
func methodClass(method string) int {
	switch method {
	case "GET":
		return methodGET
	case "HEAD":
		return methodHEAD
	case "POST":
		return methodPOST
	case "PUT":
		return methodPUT
	case "DELETE":
		return methodDELETE
	case "CONNECT":
		return methodCONNECT
	default:
		return methodOther
	}
}

const (
	decisionAllow = iota
	decisionDeny
	decisionWouldDeny
	decisionAuthRequired
	decisionError
	numDecisions
)

// decisionNames match the access log's decision field.
var decisionNames = [numDecisions]string{"allow", "deny", "would_deny", "auth_required", "error"}

// Status classes; "none" covers requests that ended without a valid status
// (client gone, hijack failed), so they still count.
const (
	statusNone = iota
	status1xx
	status2xx
	status3xx
	status4xx
	status5xx
	numStatusClasses
)

var statusNames = [numStatusClasses]string{"none", "1xx", "2xx", "3xx", "4xx", "5xx"}

func statusClass(code int) int {
	if code < 100 || code > 599 {
		return statusNone
	}
	return code / 100
}

// Refusal is why the proxy refused a request that the policy allowed. Policy
// denials are carried by acl.Decision instead.
type Refusal uint8

const (
	// NotRefused is the zero value: the proxy followed the policy.
	NotRefused Refusal = iota
	// RefusedLimit: a global or per-tenant limit was reached. Also call
	// LimitRejected, which carries the scope.
	RefusedLimit
	// RefusedTLS: TLS inspection could not be done safely (the client
	// handshake with the minted certificate or upstream certificate
	// verification failed).
	RefusedTLS
)

// Denial reasons: acl.Reason's values plus the proxy's own refusals.
const (
	reasonNone = iota
	reasonRule
	reasonDefault
	reasonNoTenant
	reasonAuth
	reasonSSRF
	reasonLimit
	reasonTLS
	numReasons
)

var reasonNames = [numReasons]string{"none", "rule", "default", "no-tenant", "auth", "ssrf", "limit", "tls"}

// aclReason maps explicitly instead of by number so a reordering of acl's
// constants cannot silently relabel denials; a reason added to acl shows up
// as "none" until it is added here (a test compares labels with String()).
func aclReason(r acl.Reason) int {
	switch r {
	case acl.ReasonRule:
		return reasonRule
	case acl.ReasonDefault:
		return reasonDefault
	case acl.ReasonNoTenant:
		return reasonNoTenant
	case acl.ReasonAuth:
		return reasonAuth
	case acl.ReasonSSRF:
		return reasonSSRF
	default:
		return reasonNone
	}
}

// DialFailure is why an upstream connection could not be made.
type DialFailure uint8

const (
	DialOther DialFailure = iota
	DialDNS
	DialRefused
	DialTimeout
	// DialSSRF: every resolved address was internal and not allowed, so
	// nothing was dialled. Callers pass it explicitly; no error maps to it.
	DialSSRF
	numDialFailures
)

var dialFailureNames = [numDialFailures]string{"other", "dns", "refused", "timeout", "ssrf"}

func (f DialFailure) String() string {
	if f >= numDialFailures {
		return dialFailureNames[DialOther]
	}
	return dialFailureNames[f]
}

// DialFailureOf classifies a resolve or dial error. DNS is checked before
// timeout because a resolver timeout is a DNS problem for the operator.
func DialFailureOf(err error) DialFailure {
	var dnsErr *net.DNSError
	var netErr net.Error
	switch {
	case errors.As(err, &dnsErr):
		return DialDNS
	case errors.Is(err, syscall.ECONNREFUSED):
		return DialRefused
	case errors.Is(err, context.DeadlineExceeded),
		errors.As(err, &netErr) && netErr.Timeout():
		return DialTimeout
	default:
		return DialOther
	}
}

// HeaderResult is the outcome of reading a PROXY protocol header.
type HeaderResult uint8

const (
	// HeaderOK: a PROXY header with an address (and, where required, a LinkID).
	HeaderOK HeaderResult = iota
	// HeaderLocal: a LOCAL command or address-less header, as Azure load
	// balancer health probes send; not tenant traffic and not an error.
	HeaderLocal
	// HeaderMissing: the connection spoke without a header where one is required.
	HeaderMissing
	// HeaderMalformed: the header did not parse or failed validation.
	HeaderMalformed
	// HeaderUntrusted: a header from a peer outside the load balancer ranges.
	HeaderUntrusted
	// HeaderTimeout: no complete header within the read-header timeout.
	HeaderTimeout
	// HeaderNone: proxy_protocol is off, or optional and no header was
	// sent. Not counted: it is the absence of a header, not an outcome of
	// reading one.
	HeaderNone
	numHeaderResults
)

// numCountedHeaders is the number of results with a counter.
const numCountedHeaders = HeaderNone

var headerResultNames = [numHeaderResults]string{"ok", "local", "missing", "malformed", "untrusted", "timeout", "none"}

func (r HeaderResult) String() string {
	if r >= numHeaderResults {
		return headerResultNames[HeaderMalformed]
	}
	return headerResultNames[r]
}

// LimitScope says which limit rejected a connection or request.
type LimitScope uint8

const (
	// ScopeGlobal is proxy.max_connections, or the headroom kept under it.
	ScopeGlobal LimitScope = iota
	// ScopeTenant is a tenant's request rate budget.
	ScopeTenant
	// ScopeTenantConnections is a tenant's cap on open connections
	// (limits.max_connections or its proxy.tenant_connection_share).
	ScopeTenantConnections
	numScopes
)

var scopeNames = [numScopes]string{"global", "tenant", "tenant_connections"}

func (s LimitScope) String() string {
	if s >= numScopes {
		return scopeNames[ScopeGlobal]
	}
	return scopeNames[s]
}

// ReloadCause is what made egressd re-read its configuration.
type ReloadCause uint8

const (
	// ReloadConfig: the config file's content changed (a ConfigMap update).
	ReloadConfig ReloadCause = iota
	// ReloadReferencedFile: a file the config names changed (a rotated
	// Secret: password_file, the inspection CA).
	ReloadReferencedFile
	// ReloadSignal: SIGHUP.
	ReloadSignal
	numReloadCauses
)

var reloadCauseNames = [numReloadCauses]string{"config", "referenced_file", "signal"}

func (c ReloadCause) String() string {
	if c >= numReloadCauses {
		return reloadCauseNames[ReloadConfig]
	}
	return reloadCauseNames[c]
}

// Directions of transferred bytes.
const (
	dirUp   = "up"
	dirDown = "down"
)
