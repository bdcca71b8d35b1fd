package acl

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"golang.org/x/net/idna"
)

// maxHostInput bounds the work ParseHost does on hostile input before any
// normalisation; real names are at most 253 bytes, IDN input a little more.
const maxHostInput = 1024

var (
	// ErrInvalidHost is wrapped by every ParseHost error.
	ErrInvalidHost = errors.New("acl: invalid host")
)

// ParseHost normalises a request target host for policy matching. Domains
// come back lower-case, without a trailing dot, with IDN labels in punycode
// (UTS #46 lookup mapping, so fullwidth digits and ideographic dots are
// seen for what they are). IPv6 literals lose their brackets; zones are
// rejected because a zone names a local interface, never an egress target.
//
// IPv4 literals in any notation inet_aton and browsers accept (decimal
// "2130706433", octal "0177.0.0.1", hex "0x7f.1", short forms "127.1") are
// normalised to the canonical address with addr valid, not rejected: the
// system resolver would dial them as that address, so rules and the SSRF
// guard must see it too. A name whose last label is numeric but that is not
// a valid IPv4 literal ("1.2.3.256", "1.2.3.4.5") is an error, following the
// WHATWG URL host parser. IPv4-mapped IPv6 is unmapped to IPv4.
//
// The result is a fixed point: ParseHost(host) returns host and addr again.
func ParseHost(s string) (host string, addr netip.Addr, err error) {
	host, addr, err = parseHost(s)
	if err != nil {
		if len(s) > 64 {
			s = s[:64] + "..."
		}
		return "", netip.Addr{}, fmt.Errorf("%w: %q: %v", ErrInvalidHost, s, err)
	}
	return host, addr, nil
}

// parseHost is ParseHost with the bare reason as error, which domain
// pattern validation reuses.
func parseHost(s string) (string, netip.Addr, error) {
	if s == "" {
		return "", netip.Addr{}, errors.New("empty")
	}
	if len(s) > maxHostInput {
		return "", netip.Addr{}, fmt.Errorf("%d bytes is too long", len(s))
	}
	if strings.HasPrefix(s, "[") {
		if !strings.HasSuffix(s, "]") {
			return "", netip.Addr{}, errors.New("unclosed bracket")
		}
		a, err := netip.ParseAddr(s[1 : len(s)-1])
		if err != nil || !a.Is6() {
			return "", netip.Addr{}, errors.New("brackets must hold an IPv6 address")
		}
		return canonicalAddr(a)
	}
	if strings.Contains(s, ":") {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return "", netip.Addr{}, errors.New("not an IPv6 address")
		}
		return canonicalAddr(a)
	}
	name := s
	if !isASCII(name) {
		// Lookup applies the UTS #46 mapping browsers use; the result is
		// ASCII and goes through the same checks as any other name.
		var err error
		name, err = idna.Lookup.ToASCII(name)
		if err != nil {
			return "", netip.Addr{}, fmt.Errorf("idna: %v", err)
		}
		if !isASCII(name) {
			return "", netip.Addr{}, errors.New("idna left non-ASCII characters")
		}
	}
	name = strings.ToLower(name)
	name = strings.TrimSuffix(name, ".")
	if name == "" {
		return "", netip.Addr{}, errors.New("empty name")
	}
	if endsInNumber(name) {
		a, ok := parseIPv4Loose(name)
		if !ok {
			return "", netip.Addr{}, errors.New("numeric last label but not an IPv4 address")
		}
		return a.String(), a, nil
	}
	if err := checkDomainSyntax(name); err != nil {
		return "", netip.Addr{}, err
	}
	return name, netip.Addr{}, nil
}

func canonicalAddr(a netip.Addr) (string, netip.Addr, error) {
	if a.Zone() != "" {
		return "", netip.Addr{}, errors.New("zones are not allowed")
	}
	a = a.Unmap()
	return a.String(), a, nil
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// checkDomainSyntax accepts lower-case LDH labels plus '_', which real
// hosts use (S3 buckets, SRV-style names) even though RFC 952 does not.
func checkDomainSyntax(name string) error {
	if len(name) > 253 {
		return fmt.Errorf("%d characters is longer than 253", len(name))
	}
	for label := range strings.SplitSeq(name, ".") {
		if label == "" {
			return errors.New("empty label")
		}
		if len(label) > 63 {
			return fmt.Errorf("label of %d characters is longer than 63", len(label))
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' && c != '_' {
				return fmt.Errorf("invalid character %q", c)
			}
		}
	}
	return nil
}

// endsInNumber is the WHATWG URL "ends in a number" test: such a host is
// an IPv4 address or invalid, never a domain.
func endsInNumber(name string) bool {
	last := name[strings.LastIndexByte(name, '.')+1:]
	if last == "" {
		return false
	}
	if allDigits(last, 10) {
		return true
	}
	return (strings.HasPrefix(last, "0x") || strings.HasPrefix(last, "0X")) && allDigits(last[2:], 16)
}

func allDigits(s string, base uint64) bool {
	for i := 0; i < len(s); i++ {
		if _, ok := digitVal(s[i], base); !ok {
			return false
		}
	}
	return true
}

func digitVal(c byte, base uint64) (uint64, bool) {
	var v uint64
	switch {
	case c >= '0' && c <= '9':
		v = uint64(c - '0')
	case c >= 'a' && c <= 'f':
		v = uint64(c-'a') + 10
	case c >= 'A' && c <= 'F':
		v = uint64(c-'A') + 10
	default:
		return 0, false
	}
	return v, v < base
}

// parseIPv4Loose implements the inet_aton / WHATWG IPv4 parser: one to
// four parts, each decimal, octal (leading 0) or hex (0x); every part but
// the last is one byte and the last fills the remaining bytes.
func parseIPv4Loose(s string) (netip.Addr, bool) {
	parts := strings.Split(s, ".")
	if len(parts) > 4 {
		return netip.Addr{}, false
	}
	var vals [4]uint64
	for i, p := range parts {
		v, ok := parseIPv4Part(p)
		if !ok {
			return netip.Addr{}, false
		}
		vals[i] = v
	}
	n := len(parts)
	for i := 0; i < n-1; i++ {
		if vals[i] > 255 {
			return netip.Addr{}, false
		}
	}
	if vals[n-1] >= 1<<(8*(5-n)) {
		return netip.Addr{}, false
	}
	ip := vals[n-1]
	for i := 0; i < n-1; i++ {
		ip |= vals[i] << (8 * (3 - i))
	}
	return netip.AddrFrom4([4]byte{byte(ip >> 24), byte(ip >> 16), byte(ip >> 8), byte(ip)}), true
}

func parseIPv4Part(p string) (uint64, bool) {
	if p == "" {
		return 0, false
	}
	base := uint64(10)
	switch {
	case len(p) >= 2 && (p[:2] == "0x" || p[:2] == "0X"):
		base, p = 16, p[2:]
		if p == "" {
			return 0, true // WHATWG: "0x" alone is zero
		}
	case len(p) >= 2 && p[0] == '0':
		base, p = 8, p[1:]
	}
	var v uint64
	for i := 0; i < len(p); i++ {
		d, ok := digitVal(p[i], base)
		if !ok {
			return 0, false
		}
		v = v*base + d
		if v > 0xffffffff {
			return 0, false
		}
	}
	return v, true
}
