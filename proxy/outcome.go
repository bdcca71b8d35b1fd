package proxy

import "net/http"

// entryKind is what an access entry describes.
type entryKind uint8

const (
	kindHTTP         entryKind = iota // an absolute-form request
	kindConnect                       // a CONNECT and the tunnel it opened
	kindBumped                        // a request inside an inspected tunnel
	kindBumpedTunnel                  // the inspected tunnel itself, logged at its close
	numEntryKinds
)

// kindInfo is how each kind is logged and counted.
type kindInfo struct {
	name      string // the access log's kind field
	tunnel    bool   // counted as metrics.KindConnect; its bytes are counted by metrics.Tunnel
	inspected bool   // the requests_total inspected label
	squid     string // Squid result code when the exchange completed
	squidFail string // Squid result code when it was cut short
}

var kinds = [numEntryKinds]kindInfo{
	kindHTTP:         {name: "http", squid: "TCP_MISS", squidFail: "TCP_MISS_ABORTED"},
	kindConnect:      {name: "connect", tunnel: true, squid: "TCP_TUNNEL", squidFail: "TCP_TUNNEL_ABORTED"},
	kindBumped:       {name: "bumped", inspected: true, squid: "TCP_MISS", squidFail: "TCP_MISS_ABORTED"},
	kindBumpedTunnel: {name: "bumped_tunnel", tunnel: true, squid: "TCP_TUNNEL", squidFail: "TCP_TUNNEL_ABORTED"},
}

func (k entryKind) String() string { return kinds[k].name }

// outcome is why an exchange ended other than as the policy said, or
// outcomeNone when it did. Every outcome has one row in outcomes; a new
// value without a row fails TestEveryOutcomeHasATableRow.
type outcome uint8

const (
	outcomeNone outcome = iota
	outcomeACL
	outcomeAuth
	outcomeLimit       // a request over its tenant's budget
	outcomeTunnelLimit // a CONNECT over its tenant's budget
	outcomeConnLimit   // a connection over its tenant's connection cap
	outcomeRevoked     // closed because a reloaded policy denies it
	outcomeSSRF
	outcomeHeaderTooLarge
	outcomeAmbiguousFraming
	outcomeUnsupportedTE
	outcomeNotProxy
	outcomeHTTPVersion
	outcomeExpectation
	outcomeMalformed
	outcomeMisdirected
	outcomeAmbiguousPath // a path whose meaning depends on who decodes it
	outcomeUpstreamTLS
	outcomeDNS
	outcomeDialTimeout
	outcomeDial
	outcomeUpstreamTimeout
	outcomeUpstream
	outcomeClientAborted         // the client left while sending its body
	outcomeClientGone            // the client left after the status line was out
	outcomeUpstreamBody          // the upstream broke after the status line was out
	outcomeClientHello           // a TLS-shaped ClientHello that did not parse
	outcomeClientHelloTimeout    // no whole ClientHello within the peek timeout, under sni_check enforce
	outcomeSNIUnchecked          // spliced without an SNI check (sni_check report or off, no hello)
	outcomeSNIInspectionMismatch // the CONNECT host and the SNI get different inspection verdicts
	outcomeSNIDenied
	outcomeSNIWouldDeny
	outcomeNotTLSSpliced
	outcomeNotTLSRefused
	outcomeMint
	outcomeClientTLS     // the client refused the minted certificate
	outcomeLearnedSplice // spliced, not bumped: learned splicing (bump_learn.go)
	outcomeParentAuth    // the parent proxy answered 407 to egressd's credentials
	outcomeParent        // the parent proxy refused or broke the request
	numOutcomes
)

// metricClass is how an outcome is counted beside its decision.
type metricClass uint8

const (
	classUnset   metricClass = iota // no row: caught by the table test
	classDecided                    // counted by its decision alone
	classFailed                     // an allowed exchange the proxy could not complete
	classLimit                      // metrics.RefusedLimit
	classTLS                        // metrics.RefusedTLS
)

// squidResult picks the Squid result code; the kind supplies the words.
type squidResult uint8

const (
	squidUnset  squidResult = iota // no row: caught by the table test
	squidByKind                    // completed, unless no status was sent
	squidFailed                    // the kind's _ABORTED code
	squidDenied                    // TCP_DENIED
)

type outcomeInfo struct {
	status int    // what the proxy answers; 0 when it sends no status of its own
	reason string // the log's error field and X-Proxy-Error
	// say is the error body's sentence for outcomes whose answer has no
	// detail of its own. It is fixed text: the error itself (a resolver
	// address, a resolved IP, a dial error) names the internal network and
	// goes only to the event log.
	say   string
	class metricClass
	squid squidResult
}

// outcomes is the one mapping from outcome to status, log reason, metric
// class and Squid code.
var outcomes = [numOutcomes]outcomeInfo{
	outcomeNone:                  {reason: "", class: classDecided, squid: squidByKind},
	outcomeACL:                   {status: http.StatusForbidden, reason: "acl", class: classDecided, squid: squidDenied},
	outcomeAuth:                  {status: http.StatusProxyAuthRequired, reason: "auth", class: classDecided, squid: squidDenied},
	outcomeLimit:                 {status: http.StatusTooManyRequests, reason: "limit", class: classLimit, squid: squidDenied},
	outcomeTunnelLimit:           {status: http.StatusServiceUnavailable, reason: "limit", class: classLimit, squid: squidDenied},
	outcomeConnLimit:             {status: http.StatusServiceUnavailable, reason: "tenant_connection_limit", class: classLimit, squid: squidDenied, say: "the tenant has too many open connections"},
	outcomeRevoked:               {reason: "revoked", class: classDecided, squid: squidFailed},
	outcomeSSRF:                  {status: http.StatusForbidden, reason: "ssrf", class: classDecided, squid: squidDenied},
	outcomeHeaderTooLarge:        {status: http.StatusRequestHeaderFieldsTooLarge, reason: "header_too_large", class: classFailed, squid: squidDenied, say: "the request head is too large"},
	outcomeAmbiguousFraming:      {status: http.StatusBadRequest, reason: "ambiguous_framing", class: classFailed, squid: squidDenied, say: "the request framing is ambiguous (RFC 9112 section 6)"},
	outcomeUnsupportedTE:         {status: http.StatusNotImplemented, reason: "unsupported_transfer_encoding", class: classFailed, squid: squidDenied, say: "the transfer coding is not supported"},
	outcomeNotProxy:              {status: http.StatusBadRequest, reason: "not_a_proxy_request", class: classFailed, squid: squidDenied, say: "not a proxy request: send an absolute URL or CONNECT"},
	outcomeHTTPVersion:           {status: http.StatusHTTPVersionNotSupported, reason: "http_version", class: classFailed, squid: squidDenied, say: "the HTTP version is not supported"},
	outcomeExpectation:           {status: http.StatusExpectationFailed, reason: "expectation", class: classFailed, squid: squidDenied, say: "only \"Expect: 100-continue\" is supported"},
	outcomeMalformed:             {status: http.StatusBadRequest, reason: "malformed_request", class: classFailed, squid: squidDenied, say: "the request is malformed"},
	outcomeAmbiguousPath:         {status: http.StatusBadRequest, reason: "ambiguous_path", class: classFailed, squid: squidDenied, say: "the request path is ambiguous (an encoded slash or backslash, a control byte, a non-ASCII byte or a broken escape)"},
	outcomeMisdirected:           {status: http.StatusMisdirectedRequest, reason: "misdirected", class: classFailed, squid: squidDenied, say: "Host does not match the inspected tunnel; this connection serves only its host"},
	outcomeUpstreamTLS:           {status: http.StatusBadGateway, reason: "upstream_tls", class: classFailed, squid: squidFailed, say: "the destination's TLS certificate did not verify"},
	outcomeDNS:                   {status: http.StatusBadGateway, reason: "dns", class: classFailed, squid: squidFailed, say: "the destination name did not resolve"},
	outcomeDialTimeout:           {status: http.StatusGatewayTimeout, reason: "dial_timeout", class: classFailed, squid: squidFailed, say: "the destination did not answer in time"},
	outcomeDial:                  {status: http.StatusBadGateway, reason: "dial", class: classFailed, squid: squidFailed, say: "the destination could not be reached"},
	outcomeUpstreamTimeout:       {status: http.StatusGatewayTimeout, reason: "upstream_timeout", class: classFailed, squid: squidFailed, say: "the destination did not respond in time"},
	outcomeUpstream:              {status: http.StatusBadGateway, reason: "upstream", class: classFailed, squid: squidFailed, say: "the destination sent an invalid response"},
	outcomeClientAborted:         {reason: "client_aborted", class: classDecided, squid: squidFailed},
	outcomeClientGone:            {reason: "client_gone", class: classDecided, squid: squidFailed},
	outcomeUpstreamBody:          {reason: "upstream_body", class: classFailed, squid: squidFailed},
	outcomeClientHello:           {reason: "client_hello", class: classTLS, squid: squidDenied},
	outcomeClientHelloTimeout:    {reason: "client_hello_timeout", class: classTLS, squid: squidDenied},
	outcomeSNIUnchecked:          {reason: "sni_unchecked", class: classDecided, squid: squidByKind},
	outcomeSNIInspectionMismatch: {reason: "sni_inspection_mismatch", class: classTLS, squid: squidDenied},
	outcomeSNIDenied:             {reason: "sni_denied", class: classTLS, squid: squidDenied},
	outcomeSNIWouldDeny:          {reason: "sni_would_deny", class: classDecided, squid: squidByKind},
	outcomeNotTLSSpliced:         {reason: "not_tls_spliced", class: classDecided, squid: squidByKind},
	outcomeNotTLSRefused:         {reason: "not_tls_refused", class: classTLS, squid: squidDenied},
	outcomeMint:                  {reason: "mint", class: classFailed, squid: squidFailed},
	outcomeClientTLS:             {reason: "client_tls", class: classTLS, squid: squidFailed},
	outcomeLearnedSplice:         {reason: "learned_splice", class: classDecided, squid: squidByKind},
	outcomeParentAuth:            {status: http.StatusBadGateway, reason: "parent_auth", class: classFailed, squid: squidFailed, say: "the parent proxy rejected egressd's credentials"},
	outcomeParent:                {status: http.StatusBadGateway, reason: "parent_refused", class: classFailed, squid: squidFailed, say: "the parent proxy refused the request"},
}

// String is the short machine reason, as logged; "" for outcomeNone.
func (o outcome) String() string { return outcomes[o].reason }

// say is the client-facing sentence for o.
func (o outcome) say() string { return outcomes[o].say }

// status is what the proxy answers for o; 0 when it answers nothing itself.
func (o outcome) status() int { return outcomes[o].status }
