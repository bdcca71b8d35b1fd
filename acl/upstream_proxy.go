package acl

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"
)

// UpstreamProxy is a compiled parent proxy. Decision.Upstream points at
// one when the traffic it allows must go through it.
type UpstreamProxy struct {
	// URL is the configured URL, safe to log (it carries no credentials).
	URL string
	// Target is the parent as a destination (Scheme "http", Method
	// "CONNECT"): the tenant's rules must allow it like any other, and
	// every address it resolves to passes CheckDial.
	Target Target
	// Authorization is the Proxy-Authorization value for the parent,
	// "" without credentials_file. Never log it.
	Authorization string
}

// parseUpstreamURL checks url and returns the parent as a Target.
func parseUpstreamURL(raw string) (Target, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return Target{}, errors.New(`not a URL; use "http://parent.example:3128"`)
	}
	switch {
	case u.Scheme != "http":
		return Target{}, errors.New(`only "http://" parents are supported (egressd speaks plain HTTP to its parent, as Squid's cache_peer does by default)`)
	case u.User != nil:
		return Target{}, errors.New("credentials do not belong in the URL; use credentials_file")
	case u.Path != "" && u.Path != "/", u.RawQuery != "", u.Fragment != "":
		return Target{}, errors.New("a parent proxy URL has no path, query or fragment")
	case u.Port() == "":
		return Target{}, errors.New(`give the port, e.g. "http://parent.example:3128"`)
	}
	port, err := strconv.ParseUint(u.Port(), 10, 16)
	if err != nil || port == 0 {
		return Target{}, fmt.Errorf("port %q: must be 1-65535", u.Port())
	}
	host, addr, err := parseHost(u.Hostname())
	if err != nil {
		return Target{}, fmt.Errorf("host: %v", err)
	}
	return Target{Scheme: "http", Host: host, Addr: addr, Port: uint16(port), Method: "CONNECT"}, nil
}

func (v *validator) upstreamProxy(path string, c *UpstreamProxyConfig) {
	if c == nil {
		return
	}
	if _, err := parseUpstreamURL(c.URL); err != nil {
		v.addf(path+".url", "%q: %v", c.URL, err)
	}
}

// compileUpstreamProxy reads the credentials file of a validated config.
func compileUpstreamProxy(c *UpstreamProxyConfig) (*UpstreamProxy, error) {
	if c == nil {
		return nil, nil
	}
	t, _ := parseUpstreamURL(c.URL)
	up := &UpstreamProxy{URL: c.URL, Target: t}
	if c.CredentialsFile == "" {
		return up, nil
	}
	b, err := os.ReadFile(c.CredentialsFile)
	if err != nil {
		return nil, fmt.Errorf("credentials_file: read: %w", err)
	}
	b = bytes.TrimSuffix(b, []byte("\n"))
	b = bytes.TrimSuffix(b, []byte("\r"))
	user, _, ok := strings.Cut(string(b), ":")
	if !ok || user == "" || strings.ContainsFunc(string(b), func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return nil, fmt.Errorf("credentials_file: %s: must hold one line \"user:password\"", c.CredentialsFile)
	}
	up.Authorization = "Basic " + base64.StdEncoding.EncodeToString(b)
	return up, nil
}

// CheckParent decides whether tenant may reach its parent proxy up at
// all, by the parent's name or address, exactly as Decide would decide a
// CONNECT to it (deny feeds included). The proxy still runs CheckDial on
// every address the parent resolves to.
func (p *Policy) CheckParent(tenant string, up *UpstreamProxy) Decision {
	ti, ok := p.byName[tenant]
	if !ok {
		return Decision{Action: Deny, Reason: ReasonNoTenant, Rule: RuleNoTenant}
	}
	d := p.evaluate(ti, up.Target)
	d.Upstream = nil // the parent is reached directly
	return d
}
