package acl

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strings"

	"github.com/egressd/egressd/internal/accesslog"
)

// maxLogLine bounds one access-log line; egressd's lines are far shorter,
// and a longer one means the input is not an access log.
const maxLogLine = 1 << 20

// replayExamples is how many example targets each change group prints.
const replayExamples = 3

type changeKey struct {
	toDenied bool
	tenant   string
	rule     string
}

type changeGroup struct {
	count    int
	examples []string
}

type replayStats struct {
	entries, auth, dialTime, unparsable, other, changed int
	// notAccess counts lines that are not access entries at all: event
	// log lines, blank lines, text. Every input line is in exactly one
	// counter, so a log that replays as nothing says why.
	notAccess int
	groups    map[changeKey]*changeGroup
}

// ErrSquidNative is Replay's answer to Squid's native access.log line: it
// carries neither the tenant nor the LinkID, so nothing can be re-decided.
var ErrSquidNative = errors.New("acl: Squid-format line without tenant fields")

// Replay re-evaluates recorded requests from egressd's JSON access log
// against p and writes what would change, grouped by direction, tenant and
// the candidate policy's rule. Lines that are not access entries (no
// "decision") are skipped.
//
// Verdicts are compared as policy verdicts: "would_deny" counts as denied,
// so replaying a report-only log against an enforcing policy shows exactly
// what enforcement would block. The log has no credentials, so entries
// whose old outcome was about authentication are not re-evaluated and are
// counted apart; other entries for a tenant the network does not identify
// are evaluated as that logged tenant, authenticated. Entries the proxy
// refused at dial time ("ssrf" on a name) depend on DNS and are counted
// apart too; IP-literal targets get the dial check replayed.
//
// Besides JSON, Replay reads egressd's squid_extended lines (Squid's ten
// fields plus tenant=, link_id=, lb=, decision= and rule=); a native
// Squid line is refused with ErrSquidNative. It returns how many
// decisions changed, so a CI job can fail on any.
// parseLogLine reads one access-log line, JSON or squid_extended. access
// is false for any other line; a native Squid line is ErrSquidNative,
// since it names no tenant. replay and rules-report read logs with it.
func parseLogLine(line []byte) (e accesslog.Entry, access bool, err error) {
	switch {
	case len(line) > 0 && line[0] == '{':
		e, err := accesslog.Parse(line)
		return e, err == nil && e.Decision != nil, nil
	case looksSquid(line):
		e, ok := parseSquidExtended(string(line))
		if !ok {
			return e, false, ErrSquidNative
		}
		return e, true, nil
	}
	return e, false, nil
}

func Replay(p *Policy, log io.Reader, out io.Writer) (changed int, err error) {
	st := replayStats{groups: map[changeKey]*changeGroup{}}
	sc := bufio.NewScanner(log)
	sc.Buffer(make([]byte, 0, 64*1024), maxLogLine)
	for n := 1; sc.Scan(); n++ {
		line := sc.Bytes()
		e, access, err := parseLogLine(line)
		switch {
		case err != nil:
			return 0, fmt.Errorf("replay: line %d: %w: log with log.format squid_extended (or json) to replay it", n, err)
		case !access:
			st.notAccess++
			continue
		}
		st.entries++
		st.replayOne(p, &e)
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("replay: read log: %w", err)
	}
	return st.changed, st.write(out)
}

func (st *replayStats) replayOne(p *Policy, e *accesslog.Entry) {
	old := *e.Decision
	switch {
	case old == "auth_required" || e.Rule == RuleAuth:
		st.auth++
		return
	case old != "allow" && old != "deny" && old != "would_deny":
		// Not a policy verdict (a limit, an upstream error): nothing to compare.
		st.other++
		return
	}
	t, ok := replayTarget(e)
	if !ok {
		st.unparsable++
		return
	}
	if e.Rule == RuleSSRF && !t.Addr.IsValid() {
		st.dialTime++
		return
	}
	id := replayIdentity(e)
	d := p.replayDecide(id, e.Tenant, t)
	if d.Action == Allow && !d.WouldDeny && t.Addr.IsValid() {
		if dd := p.CheckDial(d.Tenant, t.Addr, t); dd.Action != Allow || dd.WouldDeny {
			d = dd
		}
	}
	oldDenied := old != "allow"
	newDenied := d.Action != Allow || d.WouldDeny
	if oldDenied == newDenied {
		return
	}
	st.changed++
	tenant := d.Tenant
	if tenant == "" {
		tenant = "(none)"
	}
	k := changeKey{toDenied: newDenied, tenant: tenant, rule: d.Rule}
	g := st.groups[k]
	if g == nil {
		g = &changeGroup{}
		st.groups[k] = g
	}
	g.count++
	ex := targetString(t)
	if e.Rule != "" {
		ex += " (was " + old + " by " + e.Rule + ")"
	}
	if len(g.examples) < replayExamples && !slices.Contains(g.examples, ex) {
		g.examples = append(g.examples, ex)
	}
}

// replayDecide is Decide without credentials: a tenant the network does
// not identify falls back to the tenant the log recorded, which the
// credentials then proved.
func (p *Policy) replayDecide(id Identity, logged string, t Target) Decision {
	ti, how := p.recognize(id, Credentials{})
	if how == viaNone || how == viaDefault {
		if lt, ok := p.byName[logged]; ok && p.tenants[lt].hasUsers {
			ti = lt
		}
	}
	if ti < 0 {
		return Decision{Action: Deny, Reason: ReasonNoTenant, Rule: RuleNoTenant}
	}
	return p.evaluate(ti, t)
}

func replayIdentity(e *accesslog.Entry) Identity {
	var id Identity
	if e.LinkID != nil {
		id.LinkID, id.HasLinkID = *e.LinkID, true
	}
	id.Client, _ = netip.ParseAddrPort(e.Client)
	id.LB, _ = netip.ParseAddrPort(e.LB)
	return id
}

func replayTarget(e *accesslog.Entry) (Target, bool) {
	host, addr, err := ParseHost(e.Host)
	if err != nil {
		return Target{}, false
	}
	return Target{
		Scheme: strings.ToLower(e.Scheme),
		Host:   host,
		Addr:   addr,
		Port:   e.Port,
		Method: e.Method,
		Path:   e.Path,
	}, true
}

func (st *replayStats) write(out io.Writer) error {
	w := bufio.NewWriter(out)
	fmt.Fprintf(w, "replayed %d access entries: %d changed, %d skipped (auth, no credentials in log), %d skipped (dial-time ssrf, depends on DNS), %d skipped (not a policy decision), %d unparsable; %d other lines skipped (not access entries)\n",
		st.entries, st.changed, st.auth, st.dialTime, st.other, st.unparsable, st.notAccess)
	keys := make([]changeKey, 0, len(st.groups))
	for k := range st.groups {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b changeKey) int {
		if a.toDenied != b.toDenied {
			if a.toDenied {
				return -1
			}
			return 1
		}
		if c := strings.Compare(a.tenant, b.tenant); c != 0 {
			return c
		}
		return strings.Compare(a.rule, b.rule)
	})
	section := ""
	for _, k := range keys {
		title := "denied -> allowed"
		if k.toDenied {
			title = "allowed -> denied"
		}
		if title != section {
			fmt.Fprintf(w, "\n%s:\n", title)
			section = title
		}
		g := st.groups[k]
		fmt.Fprintf(w, "  tenant %s, rule %s: %d\n", k.tenant, k.rule, g.count)
		for _, ex := range g.examples {
			fmt.Fprintf(w, "    %s\n", ex)
		}
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("replay: write: %w", err)
	}
	return nil
}
