// Package accesslog is the schema of egressd's JSON access log: the field
// names the proxy writes and `egressd replay` reads. It is defined once,
// here, so the writer (package proxy) and the reader (package acl) cannot
// drift apart, and it imports nothing of egressd so both may use it.
package accesslog

import "encoding/json"

// Field names, the SIEM contract.
const (
	FieldRequestID  = "request_id"
	FieldTenant     = "tenant"
	FieldLinkID     = "link_id"
	FieldClient     = "client"
	FieldLB         = "lb"
	FieldKind       = "kind"
	FieldMethod     = "method"
	FieldScheme     = "scheme"
	FieldHost       = "host"
	FieldPort       = "port"
	FieldPath       = "path"
	FieldURL        = "url"
	FieldDecision   = "decision"
	FieldRule       = "rule"
	FieldReason     = "reason"
	FieldStatus     = "status"
	FieldBytesUp    = "bytes_up"
	FieldBytesDown  = "bytes_down"
	FieldDurationMS = "duration_ms"
	FieldUpstream   = "upstream"
	FieldError      = "error"
	FieldUser       = "user"
	// FieldSNI is the ClientHello server name of a tunnel, when it sent one.
	FieldSNI = "sni"
	// FieldUpgrade is the protocol a request asked to switch to: forwarded
	// when proxy.upgrades lists it (the entry then covers the tunnel after
	// the 101), removed from the request otherwise.
	FieldUpgrade = "upgrade"
	// FieldUpgradeRefused is true when the upgrade was removed.
	FieldUpgradeRefused = "upgrade_refused"
)

// Entry is one access line as read back. Optional fields the writer omits
// read as their zero value; LinkID and Decision are pointers because their
// absence means something (no LinkID TLV; not an access line).
type Entry struct {
	RequestID  string
	Tenant     string
	LinkID     *uint32
	Client     string
	LB         string
	Kind       string
	Method     string
	Scheme     string
	Host       string
	Port       uint16
	Path       string
	URL        string
	Decision   *string
	Rule       string
	Reason     string
	Status     int
	BytesUp    int64
	BytesDown  int64
	DurationMS float64
	Upstream   string
	Error      string
	User       string
	SNI        string
	Upgrade    string
	// UpgradeRefused: the upgrade was not forwarded.
	UpgradeRefused bool
}

// Parse decodes one JSON log line. A line that is not JSON, or whose
// schema fields have the wrong type, is an error; other keys (the
// logger's own level, ts, msg) are ignored.
func Parse(line []byte) (Entry, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(line, &raw); err != nil {
		return Entry{}, err
	}
	var e Entry
	fields := []struct {
		name string
		dst  any
	}{
		{FieldRequestID, &e.RequestID}, {FieldTenant, &e.Tenant}, {FieldLinkID, &e.LinkID},
		{FieldClient, &e.Client}, {FieldLB, &e.LB}, {FieldKind, &e.Kind},
		{FieldMethod, &e.Method}, {FieldScheme, &e.Scheme}, {FieldHost, &e.Host},
		{FieldPort, &e.Port}, {FieldPath, &e.Path}, {FieldURL, &e.URL},
		{FieldDecision, &e.Decision}, {FieldRule, &e.Rule}, {FieldReason, &e.Reason},
		{FieldStatus, &e.Status}, {FieldBytesUp, &e.BytesUp}, {FieldBytesDown, &e.BytesDown},
		{FieldDurationMS, &e.DurationMS}, {FieldUpstream, &e.Upstream}, {FieldError, &e.Error},
		{FieldUser, &e.User}, {FieldSNI, &e.SNI},
		{FieldUpgrade, &e.Upgrade}, {FieldUpgradeRefused, &e.UpgradeRefused},
	}
	for _, f := range fields {
		v, ok := raw[f.name]
		if !ok {
			continue
		}
		if err := json.Unmarshal(v, f.dst); err != nil {
			return Entry{}, err
		}
	}
	return e, nil
}
