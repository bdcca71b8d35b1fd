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
	sni      string // the ClientHello's server name in a tunnel, when it sent one
}

// decisionLabel is the decision as logged and counted.
func (e *entry) decisionLabel() string {
	switch {
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
		zap.String(fieldReason, e.dec.Reason.String()),
		zap.Int(fieldStatus, e.status),
		zap.Int64(fieldBytesUp, e.up),
		zap.Int64(fieldBytesDown, e.down),
		zap.Float64(fieldDurationMS, float64(time.Since(e.start).Microseconds())/1000),
	)
	if e.sni != "" {
		fields = append(fields, zap.String(fieldSNI, e.sni))
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
type squidAccess struct {
	mu  sync.Mutex
	w   io.Writer
	buf []byte
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
	b = strconv.AppendInt(b, e.down, 10)
	b = append(b, ' ')
	b = append(b, e.method...)
	b = append(b, ' ')
	if e.url != "" {
		b = append(b, e.url...)
	} else {
		b = append(b, e.target.Host...)
		b = append(b, ':')
		b = strconv.AppendUint(b, uint64(e.target.Port), 10)
	}
	b = append(b, ' ')
	if e.user != "" {
		b = append(b, e.user...)
	} else {
		b = append(b, '-')
	}
	if e.upstream.IsValid() {
		b = append(b, " HIER_DIRECT/"...)
		b = append(b, e.upstream.Addr().String()...)
	} else {
		b = append(b, " HIER_NONE/-"...)
	}
	b = append(b, " -\n"...)
	s.buf = b
	s.w.Write(b)
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
	}
	return nil, fmt.Errorf("log.format %q: must be json or squid", format)
}
