package proxy

import (
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/egressd/egressd/acl"
	"github.com/egressd/egressd/internal/accesslog"
)

// Access log field names: the schema lives in internal/accesslog, shared
// with the reader behind `egressd replay`; these short names are for the
// proxy's own log calls.
const (
	fieldRequestID  = accesslog.FieldRequestID
	fieldTenant     = accesslog.FieldTenant
	fieldLinkID     = accesslog.FieldLinkID
	fieldClient     = accesslog.FieldClient
	fieldLB         = accesslog.FieldLB
	fieldKind       = accesslog.FieldKind
	fieldMethod     = accesslog.FieldMethod
	fieldScheme     = accesslog.FieldScheme
	fieldHost       = accesslog.FieldHost
	fieldPort       = accesslog.FieldPort
	fieldPath       = accesslog.FieldPath
	fieldURL        = accesslog.FieldURL
	fieldDecision   = accesslog.FieldDecision
	fieldRule       = accesslog.FieldRule
	fieldReason     = accesslog.FieldReason
	fieldStatus     = accesslog.FieldStatus
	fieldBytesUp    = accesslog.FieldBytesUp
	fieldBytesDown  = accesslog.FieldBytesDown
	fieldDurationMS = accesslog.FieldDurationMS
	fieldUpstream   = accesslog.FieldUpstream
	fieldError      = accesslog.FieldError
	fieldUser       = accesslog.FieldUser
	fieldSNI        = accesslog.FieldSNI
	fieldUpgrade    = accesslog.FieldUpgrade
	fieldUpgradeRef = accesslog.FieldUpgradeRefused
	// fieldPeer is the socket address of a connection refused before any
	// identity existed (event log only).
	fieldPeer = "peer"
)

// entry is one access-log record: one per HTTP request, one per tunnel at
// its close. It is filled along the request path and emitted once.
type entry struct {
	start    time.Time
	reqID    string
	id       acl.Identity
	kind     entryKind
	method   string
	target   acl.Target
	url      string
	dec      acl.Decision
	status   int
	up, down int64
	upstream netip.AddrPort
	outcome  outcome // why it ended other than as decided; its String is the error field
	user     string
	// headDown is the response head bytes sent to the client (the body is
	// in down), so the Squid line counts bytes as Squid does.
	headDown int64
	mime     string // the response's Content-Type, for the Squid line
	sni      string // the ClientHello's server name in a tunnel, when it sent one
	upgrade  string // the Upgrade the request asked for
	// upgradeRefused: proxy.upgrades does not list it, so it was removed.
	upgradeRefused bool
}

// decisionLabel is the decision as logged and counted.
func (e *entry) decisionLabel() string {
	switch {
	case outcomes[e.outcome].class == classLimit:
		// The policy allowed it and the tenant's budget refused it; the
		// metrics count it as decision="deny", reason="limit".
		return "limited"
	case e.dec.WouldDeny:
		return "would_deny"
	case e.dec.Action == acl.Allow:
		return "allow"
	case e.dec.Action == acl.AuthRequired:
		return "auth_required"
	case e.dec.Reason == acl.ReasonNone:
		return "error" // refused before any policy ran (malformed request)
	default:
		return "deny"
	}
}

// reasonLabel is the policy's reason, or the proxy's when the proxy
// refused what the policy allowed.
func (e *entry) reasonLabel() string {
	if outcomes[e.outcome].class == classLimit {
		return "limit"
	}
	return e.dec.Reason.String()
}

func (e *entry) tenant() string {
	if e.dec.Tenant != "" {
		return e.dec.Tenant
	}
	return "unknown"
}

type accessLogger interface{ write(*entry) }

type jsonAccess struct{ log *zap.Logger }

// fieldsPool recycles the field slice: at 24 fields it is 1.5 KiB, which
// would otherwise be a fresh allocation on every request.
var fieldsPool = sync.Pool{New: func() any { f := make([]zap.Field, 0, 24); return &f }}

func (j jsonAccess) write(e *entry) {
	fp := fieldsPool.Get().(*[]zap.Field)
	defer func() {
		clear(*fp)
		*fp = (*fp)[:0]
		fieldsPool.Put(fp)
	}()
	fields := (*fp)[:0]
	fields = append(fields,
		zap.String(fieldRequestID, e.reqID),
		zap.String(fieldTenant, e.tenant()),
	)
	if e.id.HasLinkID {
		fields = append(fields, zap.Uint32(fieldLinkID, e.id.LinkID))
	}
	fields = append(fields,
		zap.String(fieldClient, addrPortString(e.id.Client)),
		zap.String(fieldLB, addrPortString(e.id.LB)),
		zap.String(fieldKind, e.kind.String()),
		zap.String(fieldMethod, e.method),
		zap.String(fieldScheme, e.target.Scheme),
		zap.String(fieldHost, e.target.Host),
		zap.Uint16(fieldPort, e.target.Port),
	)
	if e.target.Path != "" {
		fields = append(fields, zap.String(fieldPath, e.target.Path))
	}
	if e.url != "" {
		fields = append(fields, zap.String(fieldURL, e.url))
	}
	fields = append(fields,
		zap.String(fieldDecision, e.decisionLabel()),
		zap.String(fieldRule, e.dec.Rule),
		zap.String(fieldReason, e.reasonLabel()),
		zap.Int(fieldStatus, e.status),
		zap.Int64(fieldBytesUp, e.up),
		zap.Int64(fieldBytesDown, e.down),
		zap.Float64(fieldDurationMS, float64(time.Since(e.start).Microseconds())/1000),
	)
	if e.sni != "" {
		fields = append(fields, zap.String(fieldSNI, e.sni))
	}
	if e.upgrade != "" {
		fields = append(fields, zap.String(fieldUpgrade, e.upgrade))
		if e.upgradeRefused {
			fields = append(fields, zap.Bool(fieldUpgradeRef, true))
		}
	}
	if e.upstream.IsValid() {
		fields = append(fields, zap.String(fieldUpstream, e.upstream.String()))
	}
	if e.outcome != outcomeNone {
		fields = append(fields, zap.String(fieldError, e.outcome.String()))
	}
	if e.user != "" {
		fields = append(fields, zap.String(fieldUser, e.user))
	}
	j.log.Info("access", fields...)
	*fp = fields
}

// squidAccess writes Squid's native access.log format so existing SIEM
// parsers keep working:
//
//	time.ms elapsed client code/status bytes method URL user hierarchy/peer type
//
// With extended set (log.format squid_extended) it appends key=value
// fields after Squid's ten, which parsers that read ten fields ignore:
//
//	... tenant=team-a link_id=1001 lb=10.0.1.4:5000 decision=allow rule=github request_id=...
//
// Every field is escaped (see appendSquidField): a client-chosen user
// name or URL byte cannot add a field or a line.
type squidAccess struct {
	mu       sync.Mutex
	w        io.Writer
	buf      []byte
	extended bool
}

func (s *squidAccess) write(e *entry) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.buf[:0]
	now := time.Now()
	b = strconv.AppendInt(b, now.Unix(), 10)
	b = append(b, '.')
	b = appendPadded(b, now.Nanosecond()/1e6, 3)
	b = append(b, ' ')
	el := strconv.FormatInt(time.Since(e.start).Milliseconds(), 10)
	for i := len(el); i < 6; i++ {
		b = append(b, ' ')
	}
	b = append(b, el...)
	b = append(b, ' ')
	b = append(b, clientIP(e.id)...)
	b = append(b, ' ')
	b = append(b, squidCode(e)...)
	b = append(b, '/')
	b = appendPadded(b, e.status, 3)
	b = append(b, ' ')
	b = strconv.AppendInt(b, e.down+e.headDown, 10)
	b = append(b, ' ')
	b = appendSquidField(b, e.method, false)
	b = append(b, ' ')
	if e.url != "" {
		// The URL keeps its own %XX: escaping '%' again would change it.
		b = appendSquidField(b, e.url, false)
	} else {
		b = appendSquidField(b, e.target.Host, false)
		b = append(b, ':')
		b = strconv.AppendUint(b, uint64(e.target.Port), 10)
	}
	b = append(b, ' ')
	b = appendSquidField(b, e.user, true)
	if e.upstream.IsValid() {
		b = append(b, " HIER_DIRECT/"...)
		b = append(b, e.upstream.Addr().String()...)
	} else {
		b = append(b, " HIER_NONE/-"...)
	}
	b = append(b, ' ')
	b = appendSquidField(b, e.mime, false)
	if s.extended {
		b = append(b, " tenant="...)
		b = appendSquidField(b, e.tenant(), true)
		b = append(b, " link_id="...)
		if e.id.HasLinkID {
			b = strconv.AppendUint(b, uint64(e.id.LinkID), 10)
		} else {
			b = append(b, '-')
		}
		b = append(b, " lb="...)
		b = appendSquidField(b, addrPortString(e.id.LB), false)
		b = append(b, " decision="...)
		b = append(b, e.decisionLabel()...)
		b = append(b, " rule="...)
		b = appendSquidField(b, e.dec.Rule, true)
		b = append(b, " request_id="...)
		b = append(b, e.reqID...)
	}
	b = append(b, '\n')
	s.buf = b
	s.w.Write(b)
}

// appendSquidField appends one whitespace-free field: "-" when empty, and
// spaces, control bytes, DEL and non-ASCII bytes as %XX, as Squid's own
// rfc1738 escaping of logged fields does. pct escapes '%' too, for fields
// that are not URLs, so the escaping can be undone unambiguously.
func appendSquidField(b []byte, s string, pct bool) []byte {
	if s == "" {
		return append(b, '-')
	}
	const hex = "0123456789ABCDEF"
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || pct && c == '%' {
			b = append(b, '%', hex[c>>4], hex[c&0xf])
			continue
		}
		b = append(b, c)
	}
	return b
}

// squidCode is the Squid result code: TCP_DENIED for anything the policy
// or the proxy refused, otherwise the kind's code, _ABORTED when the
// exchange was cut short.
func squidCode(e *entry) string {
	k := kinds[e.kind]
	if e.dec.Action != acl.Allow {
		return "TCP_DENIED"
	}
	switch outcomes[e.outcome].squid {
	case squidDenied:
		return "TCP_DENIED"
	case squidFailed:
		return k.squidFail
	}
	if e.status == 0 || e.status >= 500 {
		return k.squidFail
	}
	return k.squid
}

func clientIP(id acl.Identity) string {
	if id.Client.IsValid() {
		return id.Client.Addr().String()
	}
	return "-"
}

func appendPadded(b []byte, v, width int) []byte {
	s := strconv.Itoa(v)
	for i := len(s); i < width; i++ {
		b = append(b, '0')
	}
	return append(b, s...)
}

func addrPortString(ap netip.AddrPort) string {
	if !ap.IsValid() {
		return ""
	}
	return ap.String()
}

func newAccessLogger(format string, log *zap.Logger, w io.Writer) (accessLogger, error) {
	switch format {
	case "", "json":
		return jsonAccess{log: log}, nil
	case "squid":
		return &squidAccess{w: w}, nil
	case "squid_extended":
		return &squidAccess{w: w, extended: true}, nil
	}
	return nil, fmt.Errorf("log.format %q: must be json, squid or squid_extended", format)
}
