package acl

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// Policy is a compiled, immutable Config. It is safe for concurrent use;
// a reload builds a new Policy and swaps the pointer, so requests already
// decided keep their Decision.
type Policy struct {
	tenants       []*tenant
	byName        map[string]int32
	linkIDs       map[uint32][]int32 // LinkID -> tenants claiming it (disjoint nat_cidrs)
	sources       *prefixTable       // source_cidrs -> tenant, longest prefix wins
	users         map[string]*user
	defaultTenant int32 // -1: unknown callers are denied
	reportOnly    bool
	feeds         []*feed // deny feeds, config order, applied before every tenant's rules
	// salt keys the in-memory password digests of the credential cache so
	// a memory dump does not hold plain SHA-256 of passwords.
	salt [32]byte
	now  func() time.Time

	// Credential checks (auth.go): the decoy for unknown names, failures
	// per caller, the slots of unrecognised callers, and a count of bcrypt
	// runs for tests.
	decoyOnce sync.Once
	decoy     *user
	decoyCost int // the dearest configured bcrypt cost; 0: no bcrypt users
	callers   callerFailures
	anonSlots chan struct{}
	bcrypts   atomic.Int64
}

type tenant struct {
	name         string
	index        int32
	natCIDRs     []netip.Prefix
	requireAuth  bool
	hasUsers     bool
	defaultAllow bool
	reportOnly   bool
	limits       Limits
	inspect      inspection

	rules   []rule
	domains *domainIndex // domain rules
	cidrs   *prefixTable // CIDR rules
	anyDest []int32      // rules without domains or cidrs: any destination

	upstream *UpstreamProxy // the tenant's parent proxy, nil: direct

	// authSlots bounds concurrent bcrypt verifications for this tenant, so
	// guessing against one tenant's users cannot eat every core.
	authSlots chan struct{}
}

type rule struct {
	name    string
	deny    bool
	cidrs   []netip.Prefix
	ports   []portRange
	methods []string
	schemes []string
	paths   []string
	// upstream is the rule's own parent proxy; nil uses the tenant's.
	upstream *UpstreamProxy
}

type inspection struct {
	bump    bool
	bumpSet *domainIndex // nil: bump every host not spliced
	splice  *domainIndex
	// builtinSplice is neverInspect for this tenant's region; an explicit
	// (non-"*") bump entry overrides it.
	builtinSplice *domainIndex
	sniCheck      SNIMode
	learn         LearnSplice
}

// authSlotsPerTenant is how many bcrypt verifications (~50 ms each) one
// tenant may run at once; more wait. Two keeps a guessing client to a
// fraction of the machine while a legitimate burst still drains quickly.
const authSlotsPerTenant = 2

// Compile validates cfg, reads password files and builds the lookup
// structures Decide uses. Errors from reading files carry the YAML path too.
func Compile(cfg Config) (*Policy, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	p := &Policy{
		byName:        make(map[string]int32, len(cfg.Tenants)),
		linkIDs:       map[uint32][]int32{},
		sources:       newPrefixTable(),
		users:         map[string]*user{},
		defaultTenant: -1,
		reportOnly:    cfg.ReportOnly,
		now:           time.Now,
		anonSlots:     make(chan struct{}, authSlotsPerTenant),
	}
	if _, err := rand.Read(p.salt[:]); err != nil {
		return nil, fmt.Errorf("compile: salt: %w", err)
	}
	var errs []error
	for i, fc := range cfg.DenyFeeds {
		f, err := compileFeed(fc)
		if err != nil {
			errs = append(errs, fmt.Errorf("deny_feeds[%d].file: %w", i, err))
			continue
		}
		p.feeds = append(p.feeds, f)
	}
	for i, tc := range cfg.Tenants {
		t, err := p.compileTenant(cfg, i, tc)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		p.tenants = append(p.tenants, t)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if cfg.DefaultTenant != "" {
		p.defaultTenant = p.byName[cfg.DefaultTenant]
	}
	return p, nil
}

func (p *Policy) compileTenant(cfg Config, i int, tc TenantConfig) (*tenant, error) {
	idx := int32(i)
	t := &tenant{
		name:         tc.Name,
		index:        idx,
		natCIDRs:     mustPrefixes(tc.NATCIDRs),
		requireAuth:  tc.RequireAuth,
		hasUsers:     len(tc.Users) > 0,
		defaultAllow: tc.Default == "allow",
		reportOnly:   tc.ReportOnly,
		limits:       compileLimits(tc.Limits),
		inspect:      compileInspection(tc.TLSInspection, tc.Region),
		domains:      newDomainIndex(),
		cidrs:        newPrefixTable(),
		authSlots:    make(chan struct{}, authSlotsPerTenant),
	}
	p.byName[tc.Name] = idx
	for _, id := range tc.LinkIDs {
		p.linkIDs[id] = append(p.linkIDs[id], idx)
	}
	for _, pr := range mustPrefixes(tc.SourceCIDRs) {
		p.sources.add(pr, idx)
	}
	var errs []error
	var err error
	if t.upstream, err = compileUpstreamProxy(tc.UpstreamProxy); err != nil {
		errs = append(errs, fmt.Errorf("tenants[%d].upstream_proxy.%w", i, err))
	}
	for j, uc := range tc.Users {
		u, err := p.compileUser(uc, idx)
		if err != nil {
			errs = append(errs, fmt.Errorf("tenants[%d].users[%d].password_file: %w", i, j, err))
			continue
		}
		p.users[uc.Name] = u
	}
	for j, rc := range tc.Rules {
		if strings.HasPrefix(rc.Ruleset, BuiltinPrefix) {
			for _, br := range builtinRules(rc.Ruleset, tc.Cloud, tc.Region) {
				t.addRule(br, br.Name) // built-ins have no upstream_proxy: nothing to read
			}
			continue
		}
		if rc.Ruleset != "" {
			for k, sr := range cfg.Rulesets[rc.Ruleset] {
				path := fmt.Sprintf("rulesets.%s[%d]", rc.Ruleset, k)
				if err := t.addRule(sr, path); err != nil {
					errs = append(errs, fmt.Errorf("%s.upstream_proxy.%w", path, err))
				}
			}
			continue
		}
		path := fmt.Sprintf("tenants[%d].rules[%d]", i, j)
		if err := t.addRule(rc, path); err != nil {
			errs = append(errs, fmt.Errorf("%s.upstream_proxy.%w", path, err))
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return t, nil
}

// addRule compiles a validated rule; parse errors cannot happen here,
// only a parent proxy's credentials file can fail to read.
func (t *tenant) addRule(rc RuleConfig, path string) error {
	up, err := compileUpstreamProxy(rc.UpstreamProxy)
	if err != nil {
		return err
	}
	id := int32(len(t.rules))
	r := rule{
		name:    rc.Name,
		deny:    rc.Action == "deny",
		cidrs:   mustPrefixes(rc.CIDRs),
		schemes: rc.Schemes,
		paths:   rc.Paths,

		upstream: up,
	}
	if r.name == "" {
		r.name = path
	}
	for _, s := range rc.Ports {
		pr, _ := parsePortRange(s)
		r.ports = append(r.ports, pr)
	}
	for _, m := range rc.Methods {
		r.methods = append(r.methods, strings.ToUpper(m))
	}
	t.rules = append(t.rules, r)

	for _, d := range rc.Domains {
		kind, name, _ := parseDomainPattern(d)
		t.domains.add(kind, name, id)
	}
	for _, pr := range r.cidrs {
		t.cidrs.add(pr, id)
	}
	if len(rc.Domains) == 0 && len(rc.CIDRs) == 0 {
		t.anyDest = append(t.anyDest, id)
	}
	return nil
}

func (p *Policy) compileUser(uc UserConfig, tenant int32) (*user, error) {
	u := &user{tenant: tenant, failures: map[[32]byte]time.Time{}}
	if uc.BCrypt != "" {
		u.hash = []byte(uc.BCrypt)
		if cost, err := bcrypt.Cost(u.hash); err == nil {
			p.decoyCost = max(p.decoyCost, cost)
		}
		return u, nil
	}
	b, err := os.ReadFile(uc.PasswordFile)
	if err != nil {
		return nil, fmt.Errorf("read: %w", err)
	}
	b = bytes.TrimSuffix(b, []byte("\n"))
	b = bytes.TrimSuffix(b, []byte("\r"))
	if len(b) == 0 {
		return nil, fmt.Errorf("%s: file is empty", uc.PasswordFile)
	}
	if cost, err := bcrypt.Cost(b); err == nil {
		u.hash = b
		p.decoyCost = max(p.decoyCost, cost)
		return u, nil
	}
	// A plain-text secret needs no slow hash: it never leaves the pod and
	// there is no hash to crack offline; keep only a salted digest.
	u.plain = true
	u.digest = p.digest(string(b))
	return u, nil
}

func compileLimits(l LimitsConfig) Limits {
	out := Limits(l)
	if out.Rate > 0 && out.Burst == 0 {
		out.Burst = max(1, int(math.Ceil(out.Rate)))
	}
	return out
}

func compileInspection(c TLSInspectionConfig, region string) inspection {
	in := inspection{bump: c.Mode == "bump"}
	switch c.SNICheck {
	case "report":
		in.sniCheck = SNIReport
	case "off":
		in.sniCheck = SNIOff
	}
	build := func(list []string) *domainIndex {
		if len(list) == 0 {
			return nil
		}
		d := newDomainIndex()
		for _, s := range list {
			kind, name, _ := parseDomainPattern(s)
			d.add(kind, name, 0)
		}
		return d
	}
	in.bumpSet = build(c.Bump)
	in.splice = build(c.Splice)
	if l := c.LearnSplice; l != nil {
		in.learn = LearnSplice{After: l.After, TTL: l.TTL}
		if in.learn.After == 0 {
			in.learn.After = DefaultLearnAfter
		}
		if in.learn.TTL == 0 {
			in.learn.TTL = DefaultLearnTTL
		}
	}
	if in.bump {
		in.builtinSplice = build(neverInspectFor(region))
	}
	return in
}

// mustPrefixes parses prefixes Validate already accepted.
func mustPrefixes(list []string) []netip.Prefix {
	out := make([]netip.Prefix, 0, len(list))
	for _, s := range list {
		if p, err := ParsePrefix(s); err == nil {
			out = append(out, p)
		}
	}
	return out
}

// Tenants returns the configured tenant names in config order, the label
// set for per-tenant metrics (plus "unknown").
func (p *Policy) Tenants() []string {
	names := make([]string, len(p.tenants))
	for i, t := range p.tenants {
		names[i] = t.name
	}
	return names
}

// Limits returns the tenant's fairness limits; unknown tenants get the zero
// value (unlimited), since they are denied before limits matter.
func (p *Policy) Limits(tenant string) Limits {
	if t := p.tenant(tenant); t != nil {
		return t.limits
	}
	return Limits{}
}

// Inspection says whether a tunnel from tenant to host (in ParseHost form)
// is decrypted, and how strictly its SNI is checked. Splice wins over bump
// so pinned clients can always be exempted; with mode bump and no bump
// list every other host is inspected, except the built-in never-inspect
// list (NeverInspect), which only a bump entry naming the host with a
// pattern other than "*" overrides. Unknown tenants are never bumped.
func (p *Policy) Inspection(tenant, host string) Inspection {
	t := p.tenant(tenant)
	if t == nil {
		return Inspection{}
	}
	in := Inspection{SNICheck: t.inspect.sniCheck}
	if !t.inspect.bump {
		return in
	}
	_, addr, _ := parseHostFast(host)
	isIP := addr.IsValid()
	if !isIP && t.inspect.splice != nil && t.inspect.splice.contains(host) {
		return in
	}
	if isIP {
		in.Bump = t.inspect.bumpSet == nil
		return in
	}
	explicit := t.inspect.bumpSet != nil && t.inspect.bumpSet.containsNamed(host)
	if !explicit && t.inspect.builtinSplice != nil && t.inspect.builtinSplice.contains(host) {
		return in
	}
	if t.inspect.bumpSet != nil {
		in.Bump = t.inspect.bumpSet.contains(host)
	} else {
		in.Bump = true
	}
	// A host the operator named for inspection stays inspected whatever
	// its clients do; learning only relaxes the catch-all. A host with
	// rules only inspection can enforce is never learned either: any
	// client of the tenant can refuse certificates on purpose, and a
	// splice would then lift those rules for everyone.
	if in.Bump && !explicit && t.inspect.learn.After > 0 && !t.hasInspectedRules(host) {
		in.Learn = t.inspect.learn
	}
	return in
}

// hasInspectedRules reports whether a rule that may apply to host matches
// on paths or methods: inside a bump each request is decided on them, in
// a splice only the CONNECT is, so splicing would change the outcome.
func (tn *tenant) hasInspectedRules(host string) bool {
	inspected := func(ids []int32) bool {
		for _, id := range ids {
			r := &tn.rules[id]
			if len(r.paths) > 0 || len(r.methods) > 0 {
				return true
			}
		}
		return false
	}
	if inspected(tn.anyDest) {
		return true
	}
	d := tn.domains
	if inspected(d.any) || inspected(d.exact[host]) {
		return true
	}
	for i := 0; i < len(host); i++ {
		if host[i] == '.' && inspected(d.under[host[i+1:]]) {
			return true
		}
	}
	return false
}

// parseHostFast tells IP literals from names for hosts already in
// ParseHost form, without allocating.
func parseHostFast(host string) (string, netip.Addr, bool) {
	if a, err := netip.ParseAddr(host); err == nil {
		return host, a, true
	}
	return host, netip.Addr{}, false
}

func (p *Policy) tenant(name string) *tenant {
	if i, ok := p.byName[name]; ok {
		return p.tenants[i]
	}
	return nil
}
