package acl

import (
	"net/url"
	"strconv"
	"strings"

	"github.com/egressd/egressd/internal/accesslog"
)

// looksSquid reports a line shaped like Squid's native access.log:
// "1700000000.123    12 10.0.0.1 TCP_MISS/200 ...", a seconds.millis
// timestamp first and at least ten fields.
func looksSquid(line []byte) bool {
	f := strings.Fields(string(line))
	if len(f) < 10 {
		return false
	}
	sec, ms, ok := strings.Cut(f[0], ".")
	if !ok {
		return false
	}
	_, err1 := strconv.ParseUint(sec, 10, 64)
	_, err2 := strconv.ParseUint(ms, 10, 16)
	return err1 == nil && err2 == nil && strings.Contains(f[3], "/")
}

// parseSquidExtended reads egressd's squid_extended line: Squid's ten
// fields, then key=value fields. ok is false for a native Squid line
// (no tenant= field), which names no tenant to replay as.
func parseSquidExtended(line string) (accesslog.Entry, bool) {
	f := strings.Fields(line)
	var e accesslog.Entry
	kv := map[string]string{}
	for _, x := range f[10:] {
		if k, v, ok := strings.Cut(x, "="); ok {
			kv[k] = unescapeSquid(v)
		}
	}
	tenant, ok := kv["tenant"]
	if !ok {
		return e, false
	}
	if tenant != "-" && tenant != "unknown" {
		e.Tenant = tenant
	}
	if v, err := strconv.ParseUint(kv["link_id"], 10, 32); err == nil {
		id := uint32(v)
		e.LinkID = &id
	}
	if lb := kv["lb"]; lb != "-" {
		e.LB = lb
	}
	if f[2] != "-" {
		e.Client = f[2] + ":0"
	}
	d := kv["decision"]
	e.Decision, e.Rule = &d, kv["rule"]
	e.Method = unescapeSquid(f[5])
	target := f[6]
	if e.Method == "CONNECT" {
		host, port, _ := strings.Cut(target, ":")
		// A CONNECT line shows host:port; the IPv6 form is [addr]:port.
		if i := strings.LastIndex(target, ":"); i > 0 {
			host, port = strings.Trim(target[:i], "[]"), target[i+1:]
		}
		e.Scheme, e.Host = "https", host
		n, _ := strconv.ParseUint(port, 10, 16)
		e.Port = uint16(n)
		return e, true
	}
	// The URL field is left as the proxy logged it (its %XX are the
	// request's own), so it parses like the JSON log's url.
	u, err := url.Parse(target)
	if err != nil {
		e.Host = "" // unparsable; counted by replayOne
		return e, true
	}
	e.Scheme, e.Host, e.Path = u.Scheme, u.Hostname(), u.EscapedPath()
	switch p := u.Port(); {
	case p != "":
		n, _ := strconv.ParseUint(p, 10, 16)
		e.Port = uint16(n)
	case u.Scheme == "https":
		e.Port = 443
	default:
		e.Port = 80
	}
	return e, true
}

// unescapeSquid undoes the %XX escaping egressd's Squid writer applies to
// spaces, control bytes and '%'; anything else is left as written.
func unescapeSquid(s string) string {
	if !strings.Contains(s, "%") {
		return s
	}
	if u, err := url.PathUnescape(s); err == nil {
		return u
	}
	return s
}
