package proxy

import (
	"bytes"
	"net/netip"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/egressd/egressd/acl"
	"github.com/egressd/egressd/internal/accesslog"
)

// TestAccessLogLineReadsBackFieldForField: a line the JSON writer emits is
// read by the schema's reader (the one `egressd replay` uses) with every
// field equal to what was written, so writer and reader cannot drift.
func TestAccessLogLineReadsBackFieldForField(t *testing.T) {
	var buf bytes.Buffer
	enc := zap.NewProductionEncoderConfig() // as cmd/egressd builds it
	log := zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(enc), zapcore.AddSync(&buf), zapcore.InfoLevel))
	e := entry{
		start: time.Now().Add(-1500 * time.Millisecond),
		reqID: "req-1",
		id: acl.Identity{LinkID: 1001, HasLinkID: true,
			Client: netip.MustParseAddrPort("10.0.0.7:40000"), LB: netip.MustParseAddrPort("10.0.0.1:50000")},
		kind:     kindBumped,
		method:   "POST",
		target:   acl.Target{Scheme: "https", Host: "api.example.com", Port: 8443, Path: "/v1/x"},
		url:      "https://api.example.com:8443/v1/x",
		dec:      acl.Decision{Tenant: "demo", Action: acl.Deny, Rule: "no-post", Reason: acl.ReasonRule},
		status:   403,
		up:       12,
		down:     345,
		upstream: netip.MustParseAddrPort("127.0.0.1:8443"),
		outcome:  outcomeACL,
		user:     "alice",
	}
	jsonAccess{log: log}.write(&e)

	got, err := accesslog.Parse(bytes.TrimSpace(buf.Bytes()))
	if err != nil {
		t.Fatalf("Parse(%s): %v", buf.Bytes(), err)
	}
	if got.LinkID == nil || *got.LinkID != 1001 {
		t.Errorf("link_id = %v, want 1001", got.LinkID)
	}
	if got.Decision == nil || *got.Decision != "deny" {
		t.Errorf("decision = %v, want deny", got.Decision)
	}
	if got.DurationMS < 1500 || got.DurationMS > 60_000 {
		t.Errorf("duration_ms = %v, want about 1500", got.DurationMS)
	}
	got.LinkID, got.Decision, got.DurationMS = nil, nil, 0
	want := accesslog.Entry{
		RequestID: "req-1", Tenant: "demo", Client: "10.0.0.7:40000", LB: "10.0.0.1:50000",
		Kind: "bumped", Method: "POST", Scheme: "https", Host: "api.example.com", Port: 8443,
		Path: "/v1/x", URL: "https://api.example.com:8443/v1/x", Rule: "no-post", Reason: "rule",
		Status: 403, BytesUp: 12, BytesDown: 345, Upstream: "127.0.0.1:8443", Error: "acl", User: "alice",
	}
	if got != want {
		t.Errorf("read back\n %+v\nwant\n %+v\nfrom %s", got, want, buf.Bytes())
	}
}
