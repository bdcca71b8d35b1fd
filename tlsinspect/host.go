package tlsinspect

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// ErrInvalidHost is returned for host names a leaf must never be minted
// for. Hosts reach this package from client-controlled SNI and CONNECT
// lines, so they are checked rather than trusted.
var ErrInvalidHost = errors.New("tlsinspect: invalid host name")

// maxHostLen is the longest DNS name in presentation form (RFC 1035 §2.3.4).
const maxHostLen = 253

// normalizeHost returns the cache key and SAN form of a host: a lower-case
// DNS name without trailing dot, or an IP literal in canonical form
// (brackets removed, IPv4-mapped IPv6 unmapped). Wildcards, zones, ports
// and non-ASCII names are rejected: clients send IDNs as A-labels anyway.
func normalizeHost(h string) (string, error) {
	if strings.HasPrefix(h, "[") && strings.HasSuffix(h, "]") {
		h = h[1 : len(h)-1]
	}
	// Only try an IP parse when the host could be one: a failed ParseAddr
	// allocates its error, and this runs on every cache hit.
	if mayBeIP(h) {
		if ip, err := netip.ParseAddr(h); err == nil {
			if ip.Zone() != "" {
				return "", fmt.Errorf("%w: %q has an IPv6 zone", ErrInvalidHost, h)
			}
			return ip.Unmap().String(), nil
		}
	}
	name := strings.ToLower(strings.TrimSuffix(h, "."))
	if name == "" {
		return "", fmt.Errorf("%w: empty", ErrInvalidHost)
	}
	if len(name) > maxHostLen {
		return "", fmt.Errorf("%w: longer than %d bytes", ErrInvalidHost, maxHostLen)
	}
	// strings.Cut rather than Split: this runs on every cache hit and
	// should not allocate.
	for rest, more := name, true; more; {
		var label string
		label, rest, more = strings.Cut(rest, ".")
		if err := checkLabel(label); err != nil {
			return "", fmt.Errorf("%w: %q: %v", ErrInvalidHost, h, err)
		}
	}
	return name, nil
}

func mayBeIP(h string) bool {
	return h != "" && (('0' <= h[0] && h[0] <= '9') || strings.IndexByte(h, ':') >= 0)
}

func checkLabel(label string) error {
	if label == "" {
		return errors.New("empty label")
	}
	if len(label) > 63 {
		return errors.New("label longer than 63 bytes")
	}
	for i := 0; i < len(label); i++ {
		c := label[i]
		// Underscore is not LDH but appears in real service names and
		// crypto/x509 accepts it in SANs.
		if ('a' <= c && c <= 'z') || ('0' <= c && c <= '9') || c == '-' || c == '_' {
			continue
		}
		if c < 0x20 || c >= 0x7f {
			return fmt.Errorf("invalid byte %#02x", c)
		}
		return fmt.Errorf("invalid character %q", c)
	}
	return nil
}
