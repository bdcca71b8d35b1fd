package acl

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strings"
)

// FeedPrefix names the rule of a deny-feed match in decisions and logs:
// "feed/NAME".
const FeedPrefix = "feed/"

// DenyFeedConfig is one entry of the top-level `deny_feeds:` list: a file
// of domains and CIDRs that every tenant is denied before its own rules.
//
//	deny_feeds:
//	  - {name: threat-intel, file: /etc/egressd/feeds/threat.txt}
//	  - {name: ads, file: /etc/egressd/feeds/hosts, report_only: true}
type DenyFeedConfig struct {
	// Name labels matches as rule "feed/NAME" in logs and metrics.
	Name string `yaml:"name"`
	// File is read at every Compile, so a changed file takes effect at the
	// next reload. One entry a line, in any of these forms:
	//   bad.example, .bad.example   the domain and every name below it
	//   *.bad.example               only names below it
	//   0.0.0.0 bad.example other   hosts-file form (the address is ignored)
	//   ||bad.example^              adblock domain form
	//   203.0.113.0/24, 198.51.100.7
	// Comments start with '#' (at line start or after a blank), ';' or
	// '!'; lines starting with '[' (adblock headers) are ignored. Lines in
	// any other form (adblock rules with $options or paths, exceptions,
	// cosmetic rules) are skipped and counted, see FeedInfo.
	File string `yaml:"file"`
	// ReportOnly logs would_deny with rule feed/NAME instead of denying.
	// Default false.
	ReportOnly bool `yaml:"report_only"`
}

// FeedInfo describes one compiled feed, for `egressd check` and the
// startup log.
type FeedInfo struct {
	Name, File   string
	ReportOnly   bool
	Domains      int // domain entries (duplicates counted once)
	Ranges       int // address ranges after merging overlaps
	Skipped      int // lines in a form egressd does not apply
	FirstSkipped int // line number of the first skipped line, 0 if none
}

// feedKind says what a domain entry covers; both bits for "bad.example".
type feedKind uint8

const (
	feedSelf  feedKind = 1 << iota // the name itself
	feedBelow                      // every name strictly below it
)

// feed is one compiled deny feed. Domain lookup is one map probe per label
// of the host, whatever the feed's size; address lookup is a binary search
// over sorted, merged ranges.
type feed struct {
	rule       string // "feed/NAME"
	reportOnly bool
	domains    map[string]feedKind
	v4         []v4Range
	v6         []v6Range
	info       FeedInfo
}

type v4Range struct{ lo, hi uint32 }

type v6Range struct{ lo, hi u128 }

type u128 struct{ hi, lo uint64 }

func (a u128) cmp(b u128) int {
	if c := cmp.Compare(a.hi, b.hi); c != 0 {
		return c
	}
	return cmp.Compare(a.lo, b.lo)
}

func (a u128) next() (u128, bool) {
	if a.lo != ^uint64(0) {
		return u128{a.hi, a.lo + 1}, true
	}
	if a.hi != ^uint64(0) {
		return u128{a.hi + 1, 0}, true
	}
	return a, false
}

func u128Of(a netip.Addr) u128 {
	b := a.As16()
	return u128{binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])}
}

// matchHost reports whether host (ParseHost form, not an IP) is listed.
func (f *feed) matchHost(host string) bool {
	if f.domains[host]&feedSelf != 0 {
		return true
	}
	for i := 0; i < len(host); i++ {
		if host[i] == '.' && f.domains[host[i+1:]]&feedBelow != 0 {
			return true
		}
	}
	return false
}

// matchAddr reports whether ip (unmapped, no zone) is inside a listed range.
func (f *feed) matchAddr(ip netip.Addr) bool {
	if ip.Is4() {
		b := ip.As4()
		x := binary.BigEndian.Uint32(b[:])
		i, _ := slices.BinarySearchFunc(f.v4, x, func(r v4Range, x uint32) int { return cmp.Compare(r.lo, x) })
		// i is the first range starting at or after x; the candidate is the
		// one starting exactly at x, or the one before it.
		if i < len(f.v4) && f.v4[i].lo == x {
			return true
		}
		return i > 0 && f.v4[i-1].hi >= x
	}
	x := u128Of(ip)
	i, _ := slices.BinarySearchFunc(f.v6, x, func(r v6Range, x u128) int { return r.lo.cmp(x) })
	if i < len(f.v6) && f.v6[i].lo == x {
		return true
	}
	return i > 0 && f.v6[i-1].hi.cmp(x) >= 0
}

// matchTarget applies the feed to a request target.
func (f *feed) matchTarget(t *Target) bool {
	if t.Addr.IsValid() {
		return f.matchAddr(t.Addr.Unmap())
	}
	return t.Host != "" && f.matchHost(t.Host)
}

// hostsLocalNames are the names hosts files map to themselves; they are
// not blocklist entries.
var hostsLocalNames = map[string]bool{
	"localhost": true, "localhost.localdomain": true, "local": true, "broadcasthost": true,
	"ip6-localhost": true, "ip6-loopback": true, "ip6-localnet": true, "ip6-mcastprefix": true,
	"ip6-allnodes": true, "ip6-allrouters": true, "ip6-allhosts": true,
}

// compileFeed reads and indexes one feed file.
func compileFeed(fc DenyFeedConfig) (*feed, error) {
	data, err := os.ReadFile(fc.File)
	if err != nil {
		return nil, fmt.Errorf("read: %w", err)
	}
	f := &feed{rule: FeedPrefix + fc.Name, reportOnly: fc.ReportOnly,
		info: FeedInfo{Name: fc.Name, File: fc.File, ReportOnly: fc.ReportOnly}}
	b := newFeedBuilder()
	// Files saved by Windows tools start with a UTF-8 byte order mark,
	// which would make the first entry unparsable.
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	lineNo := 0
	for len(data) > 0 {
		var line []byte
		line, data, _ = bytes.Cut(data, []byte("\n"))
		lineNo++
		if !b.addLine(string(line)) {
			f.info.Skipped++
			if f.info.FirstSkipped == 0 {
				f.info.FirstSkipped = lineNo
			}
		}
	}
	f.domains = b.domains()
	f.v4, f.v6 = mergeV4(b.v4), mergeV6(b.v6)
	f.info.Domains, f.info.Ranges = len(f.domains), len(f.v4)+len(f.v6)
	if f.info.Domains == 0 && f.info.Ranges == 0 {
		// An empty or truncated download must not silently lift a block:
		// refusing it keeps the policy in force at a reload.
		return nil, fmt.Errorf("%s: no domain or CIDR entries (%d lines skipped)", fc.File, f.info.Skipped)
	}
	return f, nil
}

// feedBuilder collects entries. Names are appended to one arena and the
// map keys are cut from a single string made of it, so a feed of a
// million names costs one allocation for their bytes instead of a million.
type feedBuilder struct {
	arena []byte
	names []feedName
	v4    []v4Range
	v6    []v6Range
}

type feedName struct {
	off, n uint32
	kind   feedKind
}

func newFeedBuilder() *feedBuilder { return &feedBuilder{} }

func (b *feedBuilder) domains() map[string]feedKind {
	all := string(b.arena)
	m := make(map[string]feedKind, len(b.names))
	for _, n := range b.names {
		k := all[n.off : n.off+n.n]
		m[k] |= n.kind
	}
	return m
}

// addLine parses one line; false means it was skipped as unsupported.
func (b *feedBuilder) addLine(line string) bool {
	line = strings.TrimSpace(line)
	if line == "" {
		return true
	}
	switch line[0] {
	case '#', '!', ';', '[':
		return true
	}
	if i := strings.IndexByte(line, ';'); i >= 0 {
		line = strings.TrimSpace(line[:i]) // "1.2.3.0/24 ; SBL123" (Spamhaus DROP)
	}
	if i := strings.Index(line, " #"); i >= 0 {
		line = strings.TrimSpace(line[:i])
	} else if i := strings.Index(line, "\t#"); i >= 0 {
		line = strings.TrimSpace(line[:i])
	}
	if strings.HasPrefix(line, "||") {
		name, ok := strings.CutSuffix(line[2:], "^")
		if !ok || strings.ContainsAny(name, "^$/*|@") {
			return false // options, paths or wildcards change what the rule means
		}
		return b.addDomain(name, feedSelf|feedBelow)
	}
	if strings.ContainsAny(line, "#$@|^") {
		return false // cosmetic rules, exceptions and other adblock syntax
	}
	fields := strings.Fields(line)
	if len(fields) > 1 {
		if _, err := netip.ParseAddr(fields[0]); err != nil {
			return false
		}
		ok := true
		for _, name := range fields[1:] {
			if hostsLocalNames[name] {
				continue
			}
			if _, err := netip.ParseAddr(name); err == nil {
				continue // "0.0.0.0 0.0.0.0" heads some hosts files
			}
			ok = b.addDomain(name, feedSelf|feedBelow) && ok
		}
		return ok
	}
	if strings.Contains(line, "/") || isAddrLike(line) {
		return b.addPrefix(line)
	}
	kind := feedSelf | feedBelow
	if strings.HasPrefix(line, "*.") {
		kind = feedBelow
	}
	return b.addDomain(line, kind)
}

// isAddrLike tells a bare address from a name before ParsePrefix, so that
// "198.51.100.7" is a /32 and not a domain.
func isAddrLike(s string) bool {
	_, err := netip.ParseAddr(s)
	return err == nil
}

func (b *feedBuilder) addDomain(s string, kind feedKind) bool {
	k, name, err := parseDomainPattern(s)
	if err != nil || k == domainAny {
		return false
	}
	if k == domainSubdomain {
		kind = feedBelow
	}
	if len(b.arena)+len(name) > 1<<32-1 {
		return false
	}
	b.names = append(b.names, feedName{off: uint32(len(b.arena)), n: uint32(len(name)), kind: kind})
	b.arena = append(b.arena, name...)
	return true
}

func (b *feedBuilder) addPrefix(s string) bool {
	p, err := ParsePrefix(s)
	if err != nil {
		return false
	}
	if p.Addr().Is4() {
		lo := binary.BigEndian.Uint32(p.Addr().AsSlice())
		hi := lo | (1<<(32-p.Bits()) - 1)
		if p.Bits() == 0 {
			hi = ^uint32(0)
		}
		b.v4 = append(b.v4, v4Range{lo, hi})
		return true
	}
	lo := u128Of(p.Addr())
	hi := lo
	host := 128 - p.Bits()
	switch {
	case host >= 64:
		hi.lo = ^uint64(0)
		if host == 128 {
			hi.hi = ^uint64(0)
		} else {
			hi.hi |= 1<<(host-64) - 1
		}
	case host > 0:
		hi.lo |= 1<<host - 1
	}
	b.v6 = append(b.v6, v6Range{lo, hi})
	return true
}

// mergeV4 sorts ranges and merges overlapping and adjacent ones, so that
// at most one range can contain an address.
func mergeV4(rs []v4Range) []v4Range {
	slices.SortFunc(rs, func(a, b v4Range) int { return cmp.Compare(a.lo, b.lo) })
	out := rs[:0]
	for _, r := range rs {
		if n := len(out); n > 0 && (out[n-1].hi == ^uint32(0) || r.lo <= out[n-1].hi+1) {
			out[n-1].hi = max(out[n-1].hi, r.hi)
			continue
		}
		out = append(out, r)
	}
	return slices.Clip(out)
}

func mergeV6(rs []v6Range) []v6Range {
	slices.SortFunc(rs, func(a, b v6Range) int { return a.lo.cmp(b.lo) })
	out := rs[:0]
	for _, r := range rs {
		if n := len(out); n > 0 {
			next, ok := out[n-1].hi.next()
			if !ok || r.lo.cmp(next) <= 0 {
				if r.hi.cmp(out[n-1].hi) > 0 {
					out[n-1].hi = r.hi
				}
				continue
			}
		}
		out = append(out, r)
	}
	return slices.Clip(out)
}

// feedMatch is the first feed (config order) listing t: the first
// enforcing one if any, else the first report-only one.
func (p *Policy) feedMatch(t *Target) (f *feed) {
	for _, fd := range p.feeds {
		if fd.matchTarget(t) {
			if !fd.reportOnly {
				return fd
			}
			if f == nil {
				f = fd
			}
		}
	}
	return f
}

// feedMatchAddr is feedMatch for a dialed address.
func (p *Policy) feedMatchAddr(ip netip.Addr) (f *feed) {
	for _, fd := range p.feeds {
		if fd.matchAddr(ip) {
			if !fd.reportOnly {
				return fd
			}
			if f == nil {
				f = fd
			}
		}
	}
	return f
}

// Feeds describes the compiled deny feeds in config order.
func (p *Policy) Feeds() []FeedInfo {
	out := make([]FeedInfo, len(p.feeds))
	for i, f := range p.feeds {
		out[i] = f.info
	}
	return out
}

// FeedFiles lists the files the deny feeds read, for the reloader to
// watch: a change to one of them must reach the policy like a change to
// the config itself.
func (c *Config) FeedFiles() []string {
	out := make([]string, 0, len(c.DenyFeeds))
	for _, f := range c.DenyFeeds {
		out = append(out, f.File)
	}
	return out
}

func (v *validator) feeds(list []DenyFeedConfig) {
	seen := map[string]int{}
	for i, f := range list {
		p := fmt.Sprintf("deny_feeds[%d]", i)
		if err := checkName(f.Name); err != nil {
			v.addf(p+".name", "%q: %v", f.Name, err)
		} else if j, dup := seen[f.Name]; dup {
			v.addf(p+".name", "%q: duplicate of deny_feeds[%d].name", f.Name, j)
		} else {
			seen[f.Name] = i
		}
		if f.File == "" {
			v.addf(p+".file", "required")
		}
	}
}
