package acl

import "net/netip"

// internalRange is a destination no tenant reaches unless one of its allow
// rules names the range (or a part of it) in cidrs.
type internalRange struct {
	prefix netip.Prefix
	name   string
}

// internalV4 lists IPv4 ranges that are not the public internet. Beyond the
// issue's list it blocks the IANA special-purpose test and benchmark nets
// (RFC 6890): nothing legitimate lives there, and a proxy in a corporate
// VNet may well route them somewhere internal.
var internalV4 = []internalRange{
	{netip.MustParsePrefix("0.0.0.0/8"), "this network (RFC 1122)"},
	{netip.MustParsePrefix("10.0.0.0/8"), "private (RFC 1918)"},
	{netip.MustParsePrefix("100.64.0.0/10"), "CGNAT shared space (RFC 6598)"},
	{netip.MustParsePrefix("127.0.0.0/8"), "loopback"},
	{netip.MustParsePrefix("168.63.129.16/32"), "Azure platform (wireserver/DNS/health probes)"},
	{netip.MustParsePrefix("169.254.0.0/16"), "link-local, incl. 169.254.169.254 metadata"},
	{netip.MustParsePrefix("172.16.0.0/12"), "private (RFC 1918)"},
	{netip.MustParsePrefix("192.0.0.0/24"), "IETF protocol assignments"},
	{netip.MustParsePrefix("192.0.2.0/24"), "documentation (TEST-NET-1)"},
	{netip.MustParsePrefix("192.88.99.0/24"), "6to4 relay anycast"},
	{netip.MustParsePrefix("192.168.0.0/16"), "private (RFC 1918)"},
	{netip.MustParsePrefix("198.18.0.0/15"), "benchmarking"},
	{netip.MustParsePrefix("198.51.100.0/24"), "documentation (TEST-NET-2)"},
	{netip.MustParsePrefix("203.0.113.0/24"), "documentation (TEST-NET-3)"},
	{netip.MustParsePrefix("224.0.0.0/4"), "multicast"},
	{netip.MustParsePrefix("240.0.0.0/4"), "reserved, incl. broadcast 255.255.255.255"},
}

// internalV6 lists native IPv6 ranges. The embedding prefixes (mapped,
// compatible, NAT64, 6to4) are handled by internalPrefix, which checks the
// IPv4 address inside them; Teredo is blocked whole because it tunnels to
// an obfuscated IPv4 address and no public service needs it.
var internalV6 = []internalRange{
	{netip.MustParsePrefix("::/128"), "unspecified"},
	{netip.MustParsePrefix("::1/128"), "loopback"},
	{netip.MustParsePrefix("64:ff9b:1::/48"), "local-use NAT64 (RFC 8215)"},
	{netip.MustParsePrefix("100::/64"), "discard-only (RFC 6666)"},
	{netip.MustParsePrefix("2001::/32"), "Teredo"},
	{netip.MustParsePrefix("2001:db8::/32"), "documentation"},
	{netip.MustParsePrefix("fc00::/7"), "unique local (ULA)"},
	{netip.MustParsePrefix("fe80::/10"), "link-local"},
	{netip.MustParsePrefix("fec0::/10"), "site-local (deprecated)"},
	{netip.MustParsePrefix("ff00::/8"), "multicast"},
}

// CheckIP reports whether ip is an internal destination: ReasonSSRF if it
// is, ReasonNone if it is a public address. It looks through IPv4-mapped,
// IPv4-compatible, NAT64 (64:ff9b::/96) and 6to4 (2002::/16) forms, since a
// NAT64 gateway or the kernel would deliver those to the IPv4 address inside.
func CheckIP(ip netip.Addr) Reason {
	if _, _, internal := internalPrefix(ip); internal {
		return ReasonSSRF
	}
	return ReasonNone
}

// internalPrefix returns the blocked range containing ip, expressed in ip's
// own address family (so a NAT64 address yields 64:ff9b::a00:0/104 for
// 10.0.0.0/8) together with the range's name. An explicit allow rule
// exempts ip only if its CIDR is at least this specific: "0.0.0.0/0" opens
// the internet, not the metadata endpoint.
func internalPrefix(ip netip.Addr) (netip.Prefix, string, bool) {
	if !ip.IsValid() {
		return netip.Prefix{}, "invalid address", true
	}
	ip = ip.WithZone("").Unmap()
	if ip.Is4() {
		for _, r := range internalV4 {
			if r.prefix.Contains(ip) {
				return r.prefix, r.name, true
			}
		}
		return netip.Prefix{}, "", false
	}
	for _, r := range internalV6 {
		if r.prefix.Contains(ip) {
			return r.prefix, r.name, true
		}
	}
	b := ip.As16()
	var (
		v4     [4]byte
		offset int // bit position of the embedded IPv4 address
		kind   string
	)
	switch {
	case isZero(b[:12]): // IPv4-compatible ::a.b.c.d (RFC 4291 §2.5.5.1)
		copy(v4[:], b[12:])
		offset, kind = 96, "IPv4-compatible "
	case b[0] == 0x00 && b[1] == 0x64 && b[2] == 0xff && b[3] == 0x9b && isZero(b[4:12]): // 64:ff9b::/96 (RFC 6052)
		copy(v4[:], b[12:])
		offset, kind = 96, "NAT64 "
	case b[0] == 0x20 && b[1] == 0x02: // 6to4 2002:aabb:ccdd::/48 (RFC 3056)
		copy(v4[:], b[2:6])
		offset, kind = 16, "6to4 "
	default:
		return netip.Prefix{}, "", false
	}
	inner, name, internal := internalPrefix(netip.AddrFrom4(v4))
	if !internal {
		return netip.Prefix{}, "", false
	}
	p, err := ip.Prefix(offset + inner.Bits())
	if err != nil {
		return netip.Prefix{}, "", false
	}
	return p, kind + name, true
}

func isZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
