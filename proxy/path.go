package proxy

import (
	"bytes"
	"errors"
)

// errAmbiguousPath refuses a path whose meaning depends on who decodes it:
// an encoded "/" or "\", a NUL or other control byte, a raw backslash, a
// byte outside ASCII, or a broken %XX escape. Rules would match one
// reading and the origin could act on another (issue 12, bypass 4).
var errAmbiguousPath = errors.New("proxy: ambiguous request path")

// normalizePath appends to dst the form of path p (no query) that rules
// match and the origin receives (RFC 3986 §6.2.2): percent-encoded
// unreserved characters decoded ("/%61dmin" is "/admin"), other escapes
// upper-cased, dot segments resolved (§5.2.4) and empty segments
// collapsed ("//admin" is "/admin"). ";params" stay part of their segment
// and are matched literally; an encoded reserved character (%3B, %3F)
// stays encoded and is a different path from its raw form, as it is to
// origins. A path that is already normal comes back unchanged without
// copying.
func normalizePath(dst, p []byte) ([]byte, error) {
	if len(p) == 0 {
		return append(dst, '/'), nil
	}
	if p[0] != '/' {
		return nil, errAmbiguousPath
	}
	if isNormalPath(p) {
		return append(dst, p...), nil
	}
	// Decode into a scratch copy first, then resolve segments on it.
	dec := make([]byte, 0, len(p))
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case c == '%':
			if i+2 >= len(p) || unhex(p[i+1]) < 0 || unhex(p[i+2]) < 0 {
				return nil, errAmbiguousPath
			}
			v := byte(unhex(p[i+1])<<4 | unhex(p[i+2]))
			i += 2
			switch {
			case isUnreserved(v):
				dec = append(dec, v)
			case v == '/' || v == '\\' || v < 0x20 || v == 0x7f:
				return nil, errAmbiguousPath
			default:
				const hexDigits = "0123456789ABCDEF"
				dec = append(dec, '%', hexDigits[v>>4], hexDigits[v&0xf])
			}
		case c == '\\' || c <= ' ' || c >= 0x7f:
			return nil, errAmbiguousPath
		default:
			dec = append(dec, c)
		}
	}
	// Resolve "." and ".." and drop empty segments; a path that ended in a
	// separator or a dot segment keeps its trailing "/".
	start := len(dst)
	segs := bytes.Split(dec[1:], []byte{'/'})
	for i, s := range segs {
		last := i == len(segs)-1
		switch {
		case len(s) == 0 || bytes.Equal(s, []byte(".")):
			if last && len(dst) > start {
				dst = append(dst, '/')
			}
		case bytes.Equal(s, []byte("..")):
			if j := bytes.LastIndexByte(dst[start:], '/'); j >= 0 {
				dst = dst[:start+j]
			}
			if last {
				dst = append(dst, '/')
			}
		default:
			dst = append(dst, '/')
			dst = append(dst, s...)
		}
	}
	if len(dst) == start {
		dst = append(dst, '/')
	}
	return dst, nil
}

// isNormalPath is the common case: no escapes, no dot or empty segments,
// nothing to refuse.
func isNormalPath(p []byte) bool {
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case c == '%' || c == '\\' || c <= ' ' || c >= 0x7f:
			return false
		case c == '/' && i+1 < len(p) && (p[i+1] == '/' || p[i+1] == '.' && (i+2 == len(p) || p[i+2] == '/' || p[i+2] == '.')):
			return false
		}
	}
	return true
}

func isUnreserved(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~'
}

func unhex(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'a' <= c && c <= 'f':
		return int(c-'a') + 10
	case 'A' <= c && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}
