package proxy

import (
	"net/http"
	"strings"
	"testing"

	"github.com/egressd/egressd/acl"
)

// TestEveryOutcomeHasATableRow: an outcome added without a row in
// outcomes would log an empty error, answer no status and be counted as
// nothing; this catches it.
func TestEveryOutcomeHasATableRow(t *testing.T) {
	seen := map[string]outcome{}
	for o := range numOutcomes {
		row := outcomes[o]
		if o != outcomeNone && row.reason == "" {
			t.Errorf("outcome %d has no log reason", o)
		}
		if row.class == classUnset {
			t.Errorf("outcome %q has no metric class", row.reason)
		}
		if row.squid == squidUnset {
			t.Errorf("outcome %q has no Squid code", row.reason)
		}
		if row.status != 0 && (row.status < 400 || row.status > 599 || http.StatusText(row.status) == "") {
			t.Errorf("outcome %q answers %d, want 0 (no answer of its own) or a 4xx/5xx", row.reason, row.status)
		}
		// Only the two limits share a reason: they differ in status alone.
		if prev, dup := seen[row.reason]; dup && !(prev == outcomeLimit && o == outcomeTunnelLimit) {
			t.Errorf("outcomes %d and %d share the reason %q", prev, o, row.reason)
		}
		seen[row.reason] = o
		// An answered outcome needs its fixed sentence, unless its answer
		// is built from the decision (acl, auth, limit, ssrf).
		decided := o == outcomeACL || o == outcomeAuth || o == outcomeLimit || o == outcomeTunnelLimit || o == outcomeSSRF
		if row.status != 0 && !decided && row.say == "" {
			t.Errorf("outcome %q answers %d with no fixed error sentence", row.reason, row.status)
		}
		if o.String() != row.reason || o.status() != row.status {
			t.Errorf("outcome %q: String/status disagree with its row", row.reason)
		}
	}
}

func TestEveryEntryKindHasATableRow(t *testing.T) {
	for k := range numEntryKinds {
		row := kinds[k]
		if row.name == "" || !strings.HasPrefix(row.squid, "TCP_") || row.squidFail != row.squid+"_ABORTED" {
			t.Errorf("kind %d: row %+v is incomplete", k, row)
		}
	}
}

// TestSquidCodeCoversEveryKind: each kind gets Squid's word for it, a
// refusal is TCP_DENIED whatever the kind, and a failure is the kind's
// _ABORTED code (a failed CONNECT used to read TCP_TUNNEL, an inspected
// tunnel TCP_MISS, and a limit refusal TCP_MISS/429).
func TestSquidCodeCoversEveryKind(t *testing.T) {
	allow := acl.Decision{Action: acl.Allow, Rule: "r"}
	deny := acl.Decision{Action: acl.Deny, Rule: "r", Reason: acl.ReasonRule}
	tests := []struct {
		name    string
		kind    entryKind
		dec     acl.Decision
		outcome outcome
		status  int
		want    string
	}{
		{name: "http allowed", kind: kindHTTP, dec: allow, status: 200, want: "TCP_MISS"},
		{name: "http denied", kind: kindHTTP, dec: deny, outcome: outcomeACL, status: 403, want: "TCP_DENIED"},
		{name: "http dial failed", kind: kindHTTP, dec: allow, outcome: outcomeDial, status: 502, want: "TCP_MISS_ABORTED"},
		{name: "http over limit", kind: kindHTTP, dec: allow, outcome: outcomeLimit, status: 429, want: "TCP_DENIED"},
		{name: "http client gone", kind: kindHTTP, dec: allow, outcome: outcomeClientGone, status: 200, want: "TCP_MISS_ABORTED"},
		{name: "connect allowed", kind: kindConnect, dec: allow, status: 200, want: "TCP_TUNNEL"},
		{name: "connect dial failed", kind: kindConnect, dec: allow, outcome: outcomeDial, status: 502, want: "TCP_TUNNEL_ABORTED"},
		{name: "connect over limit", kind: kindConnect, dec: allow, outcome: outcomeTunnelLimit, status: 503, want: "TCP_DENIED"},
		{name: "connect SNI would deny", kind: kindConnect, dec: allow, outcome: outcomeSNIWouldDeny, status: 200, want: "TCP_TUNNEL"},
		{name: "connect not TLS refused", kind: kindConnect, dec: allow, outcome: outcomeNotTLSRefused, status: 200, want: "TCP_DENIED"},
		{name: "bumped request", kind: kindBumped, dec: allow, status: 200, want: "TCP_MISS"},
		{name: "bumped request upstream TLS", kind: kindBumped, dec: allow, outcome: outcomeUpstreamTLS, status: 502, want: "TCP_MISS_ABORTED"},
		{name: "bumped tunnel", kind: kindBumpedTunnel, dec: allow, status: 200, want: "TCP_TUNNEL"},
		{name: "bumped tunnel client refused cert", kind: kindBumpedTunnel, dec: allow, outcome: outcomeClientTLS, status: 200, want: "TCP_TUNNEL_ABORTED"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := entry{kind: tc.kind, dec: tc.dec, outcome: tc.outcome, status: tc.status}
			if got := squidCode(&e); got != tc.want {
				t.Errorf("squidCode = %q, want %q", got, tc.want)
			}
		})
	}
}
