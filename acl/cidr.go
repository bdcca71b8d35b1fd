package acl

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// prefixTable maps prefixes to ascending id lists. Lookup probes one map
// per prefix length actually in use (at most 33 for IPv4, 129 for IPv6),
// so its cost depends on how varied the lengths are, not on how many
// prefixes there are.
type prefixTable struct {
	m      map[netip.Prefix][]int32
	v4Bits []int // descending, so the first hit is the longest match
	v6Bits []int
}

func newPrefixTable() *prefixTable {
	return &prefixTable{m: map[netip.Prefix][]int32{}}
}

// add expects a masked prefix (ParsePrefix guarantees it).
func (t *prefixTable) add(p netip.Prefix, id int32) {
	if _, ok := t.m[p]; !ok {
		bits := &t.v6Bits
		if p.Addr().Is4() {
			bits = &t.v4Bits
		}
		if !slices.Contains(*bits, p.Bits()) {
			*bits = append(*bits, p.Bits())
			slices.Sort(*bits)
			slices.Reverse(*bits)
		}
	}
	t.m[p] = appendID(t.m[p], id)
}

// bits returns the prefix lengths to probe for ip (already unmapped).
func (t *prefixTable) bits(ip netip.Addr) []int {
	if ip.Is4() {
		return t.v4Bits
	}
	return t.v6Bits
}

// at returns the ids stored under ip's prefix of the given length.
func (t *prefixTable) at(ip netip.Addr, bits int) []int32 {
	p, err := ip.Prefix(bits)
	if err != nil {
		return nil
	}
	return t.m[p]
}

// longest returns the ids of the longest prefix containing ip.
func (t *prefixTable) longest(ip netip.Addr) ([]int32, netip.Prefix) {
	for _, b := range t.bits(ip) {
		p, err := ip.Prefix(b)
		if err != nil {
			continue
		}
		if ids, ok := t.m[p]; ok {
			return ids, p
		}
	}
	return nil, netip.Prefix{}
}

// ParsePrefix is egressd's one CIDR parser: every configured range
// (nat_cidrs, source_cidrs, rule cidrs, trusted_proxies, deny feeds) goes
// through it. It accepts "10.0.0.0/8", "2001:db8::/32" and bare addresses
// (a host route). It rejects host bits, zones and IPv4-mapped IPv6 so that
// what the operator wrote is exactly what matches: "10.0.0.5/24" silently
// masked to 10.0.0.0/24 would trust 255 addresses nobody listed.
func ParsePrefix(s string) (netip.Prefix, error) {
	var p netip.Prefix
	if strings.Contains(s, "/") {
		var err error
		if p, err = netip.ParsePrefix(s); err != nil {
			return netip.Prefix{}, errors.New(`not a CIDR; use "10.0.0.0/8" or "2001:db8::/32"`)
		}
	} else {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return netip.Prefix{}, errors.New(`not a CIDR; use "10.0.0.0/8" or "2001:db8::/32"`)
		}
		p = netip.PrefixFrom(a, a.BitLen())
	}
	if p.Addr().Zone() != "" {
		return netip.Prefix{}, errors.New("zones are not allowed")
	}
	if p.Addr().Is4In6() {
		return netip.Prefix{}, errors.New("IPv4-mapped IPv6; write the IPv4 form")
	}
	if p.Masked() != p {
		return netip.Prefix{}, fmt.Errorf("host bits set; use %q", p.Masked())
	}
	return p, nil
}
