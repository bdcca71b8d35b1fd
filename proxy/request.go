package proxy

import (
	"bytes"
	"encoding/base64"
	"errors"
	"strconv"

	"github.com/egressd/egressd/acl"
)

// request is a parsed, validated proxy request. Slices point into h.buf and
// are valid until the next request is read on the connection.
type request struct {
	h      head
	method string
	minor  int // HTTP/1.minor

	target acl.Target
	// path is the origin-form request target as it goes upstream: the
	// normalised path (target.Path) and the query as sent. It lives in
	// pathBuf, reused per connection and rebuilt for every request. The
	// upstream Host is built from target, never from the client's bytes.
	path    []byte
	pathBuf []byte

	contentLength int64 // -1 when absent
	chunked       bool
	wantsClose    bool
	expect100     bool
	upgrade       []byte // the Upgrade field when Connection lists "upgrade"
	creds         acl.Credentials
	connTokens    [][]byte // field names listed in Connection: hop-by-hop
}

var (
	errSmuggling     = errors.New("proxy: ambiguous message framing")
	errBadTE         = errors.New("proxy: transfer-encoding not supported")
	errNotProxy      = errors.New("proxy: not a proxy request")
	errBadTarget     = errors.New("proxy: invalid request target")
	errBadHost       = errors.New("proxy: missing or repeated Host")
	errBadExpect     = errors.New("proxy: unsupported expectation")
	errBadVersion    = errors.New("proxy: unsupported HTTP version")
	errMethodInvalid = errors.New("proxy: invalid method")
)

// commonMethods are interned so parsing a request line does not allocate.
var commonMethods = []string{"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "PATCH", "TRACE"}

// parseRequest validates r.h and fills the rest of r. Framing rules follow
// RFC 9112 §6: any ambiguity that could let two parsers disagree about where
// this message ends is refused rather than repaired.
func parseRequest(r *request, bs *bumpState) error {
	line := r.h.bytes(r.h.line)
	sp1 := bytes.IndexByte(line, ' ')
	sp2 := bytes.LastIndexByte(line, ' ')
	if sp1 <= 0 || sp2 <= sp1+1 {
		return errMalformed
	}
	method, target, version := line[:sp1], line[sp1+1:sp2], line[sp2+1:]
	if !isToken(method) {
		return errMethodInvalid
	}
	if bytes.IndexByte(target, ' ') >= 0 || bytes.IndexByte(target, '\t') >= 0 {
		return errMalformed
	}
	switch string(version) {
	case "HTTP/1.1":
		r.minor = 1
	case "HTTP/1.0":
		r.minor = 0
	default:
		return errBadVersion
	}
	r.method = internMethod(method)
	r.contentLength = -1
	r.chunked, r.wantsClose, r.expect100, r.upgrade = false, r.minor == 0, false, nil
	r.creds = acl.Credentials{}
	r.connTokens = r.connTokens[:0]

	if err := r.parseFields(); err != nil {
		return err
	}
	if bs != nil {
		if r.method == "CONNECT" {
			return errBadTarget // no tunnels inside an inspected tunnel
		}
		if len(target) > 0 && target[0] == '/' {
			return r.originTarget(bs, target)
		}
		if err := r.parseAbsoluteTarget(target); err != nil {
			return err
		}
		if r.target.Host != bs.host || r.target.Port != bs.port {
			return errMisdirected
		}
		r.target.Scheme = "https"
		return nil
	}
	if r.method == "CONNECT" {
		if r.chunked || r.contentLength > 0 {
			return errMalformed // a CONNECT body has no defined meaning (RFC 9110 §9.3.6)
		}
		return r.parseAuthorityTarget(target)
	}
	return r.parseAbsoluteTarget(target)
}

// internMethod returns the method in upper case: that one spelling is
// decided, logged and sent, since origins differ in whether "post" means
// POST (issue 12, bypass 4).
func internMethod(m []byte) string {
	for _, s := range commonMethods {
		if asciiEqualFold(m, s) {
			return s
		}
	}
	return string(bytes.ToUpper(m))
}

func (r *request) parseFields() error {
	var hosts, teFields int
	var clSeen bool
	var upgrade []byte
	var connUpgrade bool
	h := &r.h
	for i := range h.fields {
		name, v := h.name(i), h.value(i)
		switch {
		case asciiEqualFold(name, "Content-Length"):
			var bad bool
			forEachToken(v, func(tok []byte) {
				n, ok := parseContentLength(tok)
				if !ok || clSeen && n != r.contentLength {
					bad = true
				}
				r.contentLength, clSeen = n, true
			})
			if bad || !clSeen {
				return errSmuggling
			}
		case asciiEqualFold(name, "Transfer-Encoding"):
			teFields++
			var last []byte
			var n int
			var bad bool
			forEachToken(v, func(tok []byte) {
				n++
				last = tok
				if !isToken(tok) {
					bad = true
				}
			})
			if bad || n == 0 {
				return errSmuggling
			}
			if !asciiEqualFold(last, "chunked") {
				return errSmuggling
			}
			if n > 1 || teFields > 1 {
				return errBadTE
			}
			r.chunked = true
		case asciiEqualFold(name, "Host"):
			hosts++
		case asciiEqualFold(name, "Connection"):
			forEachToken(v, func(tok []byte) {
				switch {
				case asciiEqualFold(tok, "close"):
					r.wantsClose = true
				case asciiEqualFold(tok, "keep-alive"):
					if r.minor == 0 {
						r.wantsClose = false
					}
				case asciiEqualFold(tok, "upgrade"):
					connUpgrade = true
				}
				r.connTokens = append(r.connTokens, tok)
			})
		case asciiEqualFold(name, "Expect"):
			if !asciiEqualFold(v, "100-continue") {
				return errBadExpect
			}
			r.expect100 = r.minor == 1
		case asciiEqualFold(name, "Upgrade"):
			upgrade = v
		case asciiEqualFold(name, "Proxy-Authorization"):
			r.creds = parseBasic(v)
		}
	}
	if r.chunked && (clSeen || r.minor == 0) {
		// RFC 9112 §6.1: CL with TE, or TE in HTTP/1.0, is faulty framing
		// that a downstream parser may read differently.
		return errSmuggling
	}
	if hosts > 1 || hosts == 0 && r.minor == 1 {
		return errBadHost
	}
	if connUpgrade && len(upgrade) > 0 {
		r.upgrade = upgrade
	}
	return nil
}

func parseContentLength(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

func parseBasic(v []byte) acl.Credentials {
	const prefix = "basic "
	if len(v) < len(prefix) || !asciiEqualFold(v[:len(prefix)], prefix) {
		return acl.Credentials{Present: true}
	}
	dec, err := base64.StdEncoding.DecodeString(string(bytes.TrimSpace(v[len(prefix):])))
	if err != nil {
		return acl.Credentials{Present: true}
	}
	user, pass, ok := bytes.Cut(dec, []byte{':'})
	if !ok {
		return acl.Credentials{Present: true}
	}
	return acl.Credentials{User: string(user), Password: string(pass), Present: true}
}

// parseAbsoluteTarget handles absolute-form (RFC 9112 §3.2.2), the only form
// a forward proxy serves besides CONNECT.
func (r *request) parseAbsoluteTarget(t []byte) error {
	var scheme string
	switch {
	case len(t) > 7 && asciiEqualFold(t[:7], "http://"):
		scheme, t = "http", t[7:]
	case len(t) > 8 && asciiEqualFold(t[:8], "https://"):
		scheme, t = "https", t[8:]
	case len(t) > 0 && (t[0] == '/' || t[0] == '*'):
		return errNotProxy
	default:
		return errBadTarget
	}
	end := bytes.IndexAny(t, "/?#")
	if end < 0 {
		end = len(t)
	}
	authority, rest := t[:end], t[end:]
	if i := bytes.IndexByte(rest, '#'); i >= 0 {
		rest = rest[:i]
	}
	def := uint16(80)
	if scheme == "https" {
		def = 443
	}
	if err := r.setAuthority(authority, def); err != nil {
		return err
	}
	r.target.Scheme = scheme
	r.target.Method = r.method
	return r.setPath(rest)
}

// setPath normalises the path of an origin-form target (with its query)
// into r.path and r.target.Path, the one value rules match and the
// origin receives.
func (r *request) setPath(rest []byte) error {
	p, q := rest, []byte(nil)
	if i := bytes.IndexByte(rest, '?'); i >= 0 {
		p, q = rest[:i], rest[i:]
	}
	norm, err := normalizePath(r.pathBuf[:0], p)
	if err != nil {
		return err
	}
	r.target.Path = string(norm)
	r.path = append(norm, q...)
	r.pathBuf = r.path
	return nil
}

func (r *request) parseAuthorityTarget(t []byte) error {
	if err := r.setAuthority(t, 0); err != nil {
		return err
	}
	r.path = nil
	r.target.Scheme = "https"
	r.target.Method = r.method
	r.target.Path = ""
	return nil
}

// setAuthority parses host[:port] into r.target; defPort 0 means the port
// is required.
func (r *request) setAuthority(a []byte, defPort uint16) error {
	t, err := parseAuthority(a, defPort)
	r.target = t
	return err
}

// parseAuthority is the one host[:port] parser: request targets, Host
// fields inside an inspected tunnel, HTTP/2 :authority and `egressd
// explain` all use it, so none can read an authority another reads
// differently. The host is acl.ParseHost's canonical form.
func parseAuthority(a []byte, defPort uint16) (acl.Target, error) {
	if len(a) == 0 || bytes.IndexByte(a, '@') >= 0 {
		return acl.Target{}, errBadTarget
	}
	host, port := a, []byte(nil)
	if a[0] == '[' {
		end := bytes.IndexByte(a, ']')
		if end < 0 {
			return acl.Target{}, errBadTarget
		}
		host = a[:end+1]
		if rest := a[end+1:]; len(rest) > 0 {
			if rest[0] != ':' {
				return acl.Target{}, errBadTarget
			}
			port = rest[1:]
		}
	} else if i := bytes.LastIndexByte(a, ':'); i >= 0 {
		host, port = a[:i], a[i+1:]
	}
	p := defPort
	if port != nil {
		n, err := strconv.ParseUint(string(port), 10, 16)
		if err != nil || n == 0 {
			return acl.Target{}, errBadTarget
		}
		p = uint16(n)
	}
	if p == 0 {
		return acl.Target{}, errBadTarget
	}
	name, addr, err := acl.ParseHost(string(host))
	if err != nil {
		return acl.Target{}, errBadTarget
	}
	return acl.Target{Host: name, Addr: addr, Port: p}, nil
}

// ParseTarget is the target the proxy decides for a request for rawURL,
// built by the proxy's own parser and normalisation, so `egressd explain`
// cannot disagree with the running proxy. An empty method means what a
// client sends for the URL: GET for http, a CONNECT tunnel for https. An
// https URL with another method is a request inside an inspected tunnel.
func ParseTarget(method, rawURL string) (acl.Target, error) {
	var r request
	if method == "" {
		method = "GET"
		if len(rawURL) > 8 && asciiEqualFold([]byte(rawURL[:8]), "https://") {
			method = "CONNECT"
		}
	}
	m := []byte(method)
	if !isToken(m) {
		return acl.Target{}, errMethodInvalid
	}
	r.method = internMethod(m)
	if err := r.parseAbsoluteTarget([]byte(rawURL)); err != nil {
		return acl.Target{}, err
	}
	if r.method == "CONNECT" {
		r.target.Path = ""
	}
	return r.target, nil
}
