package acl

import (
	"bufio"
	"cmp"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
)

// RulesReport is what `egressd rules-report` prints: per tenant, how often
// each rule decided, which configured rules never did, which can never
// match because an earlier rule takes all their requests, and the denied
// destinations asked for most (what to allow next, or who to talk to).
type RulesReport struct {
	Entries   int            `json:"entries"`    // access entries read
	NotAccess int            `json:"not_access"` // other lines (event log, blank)
	Tenants   []TenantReport `json:"tenants"`    // config order, then tenants only the log names
}

// TenantReport is one tenant's part of a RulesReport.
type TenantReport struct {
	Tenant string `json:"tenant"`
	// Configured is false for a tenant the log names but the config does not.
	Configured bool        `json:"configured"`
	Entries    int         `json:"entries"`
	Rules      []RuleHits  `json:"rules"`     // feeds, rules in order, then fixed outcomes; then names only the log has
	NeverHit   []string    `json:"never_hit"` // configured rules and feeds without a single entry
	Shadowed   []Shadowing `json:"shadowed"`
	TopDenied  []DestCount `json:"top_denied"`
}

// RuleHits counts one rule's entries by logged decision.
type RuleHits struct {
	Rule string `json:"rule"`
	// Action is the rule's configured action ("allow", "deny"), "" for
	// fixed outcomes and for names the config no longer has.
	Action    string `json:"action"`
	InConfig  bool   `json:"in_config"`
	Hits      int    `json:"hits"`
	Allow     int    `json:"allow"`
	Deny      int    `json:"deny"`
	WouldDeny int    `json:"would_deny"`
	Other     int    `json:"other"` // auth_required, error, limit...
}

// Shadowing says that Rule can never decide a request: every request it
// matches, the earlier rule By matches first. The caller supplies them
// (internal/lint, the analysis `egressd check` warns with).
type Shadowing struct {
	Rule   string `json:"rule"`
	By     string `json:"by"`
	Effect string `json:"effect"` // "redundant" (same action) or "overridden" (the other action wins)
}

// DestCount is one denied destination ("host:port") and how often.
type DestCount struct {
	Destination string `json:"destination"`
	Count       int    `json:"count"`
}

// BuildRulesReport reads access logs (JSON or squid_extended) and sets
// their rule fields against p. shadowed lists the shadowed rules of each
// tenant; top bounds TopDenied per tenant.
func BuildRulesReport(p *Policy, shadowed map[string][]Shadowing, logs []io.Reader, top int) (*RulesReport, error) {
	rep := &RulesReport{}
	type acc struct {
		tr     *TenantReport
		byRule map[string]int // index into tr.Rules
		denied map[string]int
	}
	byTenant := map[string]*acc{}
	get := func(name string) *acc {
		if a, ok := byTenant[name]; ok {
			return a
		}
		a := &acc{tr: &TenantReport{Tenant: name}, byRule: map[string]int{}, denied: map[string]int{}}
		byTenant[name] = a
		return a
	}
	// Configured tenants first, with every rule they can name.
	order := []string{}
	for _, t := range p.tenants {
		a := get(t.name)
		a.tr.Configured = true
		order = append(order, t.name)
		add := func(name, action string) {
			if _, ok := a.byRule[name]; !ok {
				a.byRule[name] = len(a.tr.Rules)
				a.tr.Rules = append(a.tr.Rules, RuleHits{Rule: name, Action: action, InConfig: true})
			}
		}
		for _, f := range p.feeds {
			add(f.rule, "deny")
		}
		for _, r := range t.rules {
			action := "allow"
			if r.deny {
				action = "deny"
			}
			add(r.name, action)
		}
		for _, fixed := range []string{RuleDefault, RuleSSRF, RuleAuth} {
			add(fixed, "")
		}
		a.tr.Shadowed = shadowed[t.name]
	}

	for _, r := range logs {
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 0, 64*1024), maxLogLine)
		for sc.Scan() {
			line := sc.Bytes()
			e, access, err := parseLogLine(line)
			switch {
			case err != nil:
				return nil, fmt.Errorf("rules-report: %w: log with log.format squid_extended (or json)", err)
			case !access:
				rep.NotAccess++
				continue
			}
			rep.Entries++
			tenant := e.Tenant
			if tenant == "" {
				tenant = "unknown"
			}
			a := get(tenant)
			if !a.tr.Configured && !slices.Contains(order, tenant) {
				order = append(order, tenant)
			}
			a.tr.Entries++
			rule := e.Rule
			if rule == "" {
				rule = "(none)"
			}
			i, ok := a.byRule[rule]
			if !ok {
				i = len(a.tr.Rules)
				a.byRule[rule] = i
				a.tr.Rules = append(a.tr.Rules, RuleHits{Rule: rule})
			}
			rh := &a.tr.Rules[i]
			rh.Hits++
			switch *e.Decision {
			case "allow":
				rh.Allow++
			case "deny":
				rh.Deny++
			case "would_deny":
				rh.WouldDeny++
			default:
				rh.Other++
			}
			if *e.Decision == "deny" || *e.Decision == "would_deny" {
				a.denied[hostPort(e.Host, e.Port)]++
			}
		}
		if err := sc.Err(); err != nil {
			return nil, fmt.Errorf("rules-report: read log: %w", err)
		}
	}

	for _, name := range order {
		a := byTenant[name]
		for _, rh := range a.tr.Rules {
			if rh.InConfig && rh.Hits == 0 && rh.Action != "" {
				a.tr.NeverHit = append(a.tr.NeverHit, rh.Rule)
			}
		}
		for d, n := range a.denied {
			a.tr.TopDenied = append(a.tr.TopDenied, DestCount{d, n})
		}
		slices.SortFunc(a.tr.TopDenied, func(x, y DestCount) int {
			if c := cmp.Compare(y.Count, x.Count); c != 0 {
				return c
			}
			return strings.Compare(x.Destination, y.Destination)
		})
		if len(a.tr.TopDenied) > top {
			a.tr.TopDenied = a.tr.TopDenied[:top]
		}
		rep.Tenants = append(rep.Tenants, *a.tr)
	}
	return rep, nil
}

func hostPort(host string, port uint16) string {
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	return host + ":" + strconv.Itoa(int(port))
}

// WriteTable prints the report for people.
func (r *RulesReport) WriteTable(w io.Writer) error {
	b := bufio.NewWriter(w)
	fmt.Fprintf(b, "%d access entries read", r.Entries)
	if r.NotAccess > 0 {
		fmt.Fprintf(b, " (%d other lines skipped)", r.NotAccess)
	}
	fmt.Fprintln(b)
	for _, t := range r.Tenants {
		note := ""
		if !t.Configured {
			note = " (not in the config)"
		}
		fmt.Fprintf(b, "\ntenant %s%s: %d entries\n", t.Tenant, note, t.Entries)
		width := len("RULE")
		for _, rh := range t.Rules {
			width = max(width, len(rh.Rule))
		}
		fmt.Fprintf(b, "  %-*s  %-6s  %7s  %7s  %7s  %10s  %7s\n", width, "RULE", "ACTION", "HITS", "ALLOW", "DENY", "WOULD_DENY", "OTHER")
		for _, rh := range t.Rules {
			if rh.Hits == 0 && rh.Action == "" {
				continue // fixed outcomes that never happened are noise
			}
			action := rh.Action
			switch {
			case !rh.InConfig:
				action = "(gone)"
			case action == "":
				action = "-"
			}
			fmt.Fprintf(b, "  %-*s  %-6s  %7d  %7d  %7d  %10d  %7d\n", width, rh.Rule, action, rh.Hits, rh.Allow, rh.Deny, rh.WouldDeny, rh.Other)
		}
		if len(t.NeverHit) > 0 {
			fmt.Fprintf(b, "  never hit: %s\n", strings.Join(t.NeverHit, ", "))
		}
		for _, s := range t.Shadowed {
			fmt.Fprintf(b, "  shadowed: %s by earlier %s (%s)\n", s.Rule, s.By, s.Effect)
		}
		if len(t.TopDenied) > 0 {
			fmt.Fprintln(b, "  most denied destinations:")
			for _, d := range t.TopDenied {
				fmt.Fprintf(b, "    %7d  %s\n", d.Count, d.Destination)
			}
		}
	}
	return b.Flush()
}
