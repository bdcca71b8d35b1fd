package proxy

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"net/netip"

	proxyproto "github.com/pires/go-proxyproto"
	"github.com/pires/go-proxyproto/tlvparse"

	"github.com/egressd/egressd/acl"
	"github.com/egressd/egressd/metrics"
)

var errBadAzureTLV = errors.New("proxy: malformed or repeated Azure private endpoint LinkID TLV")

// readIdentity reads the PROXY header (if the mode wants one) from br and
// returns the caller's identity. probe is true for LOCAL or address-less
// headers: Azure's load balancer probes send exactly that, and they carry
// no client, so they are answered and never counted as tenant traffic.
func (s *Server) readIdentity(br *bufio.Reader, peer netip.AddrPort) (id acl.Identity, probe bool, outcome metrics.HeaderResult) {
	id = acl.Identity{Client: peer, LB: peer}
	mode := s.cfg.ProxyProtocol
	if mode == PPOff {
		return id, false, metrics.HeaderNone
	}
	trusted := s.pv.isTrusted(peer.Addr())
	if mode == PPRequired && !trusted {
		// Closed before a single byte is read: an untrusted peer must not
		// be able to make us parse anything.
		return id, false, metrics.HeaderUntrusted
	}
	if skipAddresslessV2(br) {
		if !trusted {
			return id, false, metrics.HeaderUntrusted
		}
		return id, true, metrics.HeaderLocal
	}
	h, err := proxyproto.Read(br)
	switch {
	case errors.Is(err, proxyproto.ErrNoProxyProtocol):
		if mode == PPRequired {
			return id, false, metrics.HeaderMissing
		}
		return id, false, metrics.HeaderNone
	case err != nil:
		if isTimeout(err) {
			return id, false, metrics.HeaderTimeout
		}
		return id, false, metrics.HeaderMalformed
	case !trusted:
		return id, false, metrics.HeaderUntrusted
	}
	id, probe, err = identityFromHeader(h, peer)
	switch {
	case err != nil:
		return id, false, metrics.HeaderMalformed
	case probe:
		return id, true, metrics.HeaderLocal
	}
	return id, false, metrics.HeaderOK
}

// skipAddresslessV2 consumes a v2 header with the PROXY command and the
// UNSPEC family, which go-proxyproto v0.15 rejects. The spec leaves such a
// header to the receiver, and it is one of the shapes Azure load balancer
// probes send: it carries no client, so it is answered as a probe.
func skipAddresslessV2(br *bufio.Reader) bool {
	if first, err := br.Peek(1); err != nil || first[0] != proxyproto.SIGV2[0] {
		return false // not a v2 header: never wait for 16 bytes that may not come
	}
	b, err := br.Peek(16)
	if err != nil || !bytes.Equal(b[:12], proxyproto.SIGV2) || b[12] != 0x21 || b[13] != 0x00 {
		return false
	}
	n := 16 + int(binary.BigEndian.Uint16(b[14:16]))
	if n > br.Size() {
		return false // let the parser refuse it as malformed
	}
	if _, err := br.Peek(n); err != nil {
		return false
	}
	br.Discard(n)
	return true
}

// identityFromHeader turns a parsed PROXY header into an Identity.
func identityFromHeader(h *proxyproto.Header, lb netip.AddrPort) (acl.Identity, bool, error) {
	id := acl.Identity{LB: lb}
	if h.Command.IsLocal() {
		// LOCAL: the load balancer speaks for itself, and the receiver
		// ignores the whole address block (proxy-protocol.txt §2.2), TLVs
		// included: a LinkID there must never name a tenant.
		return id, true, nil
	}
	src, _, ok := h.TCPAddrs()
	if !ok {
		return id, true, nil // AF_UNSPEC/UDP/unix: nothing to identify
	}
	id.Client = src.AddrPort()
	id.Client = netip.AddrPortFrom(id.Client.Addr().Unmap(), id.Client.Port())
	tlvs, err := h.TLVs()
	if err != nil {
		return id, false, err
	}
	linkID, found, err := findLinkID(tlvs)
	if err != nil {
		return id, false, err
	}
	id.LinkID, id.HasLinkID = linkID, found
	return id, false, nil
}

// findLinkID returns the Azure LinkID (TLV 0xEE, subtype 0x01, uint32 LE).
// A TLV that claims the LinkID subtype but has the wrong length is an error,
// not "no LinkID": silently dropping it would let a broken header fall
// through to weaker identification by source address. Two LinkID TLVs are
// an error too: one private endpoint has one LinkID, and taking the first
// (as tlvparse.FindAzurePrivateEndpointLinkID does) would let whoever
// wrote the header pick the tenant by order.
func findLinkID(tlvs []proxyproto.TLV) (uint32, bool, error) {
	var (
		id    uint32
		found bool
	)
	for _, t := range tlvs {
		if !isAzureLinkID(t) {
			continue
		}
		if len(t.Value) != 5 || found {
			return 0, false, errBadAzureTLV
		}
		id, found = binary.LittleEndian.Uint32(t.Value[1:]), true
	}
	return id, found, nil
}

// isAzureLinkID reports whether t claims to be the private endpoint
// LinkID, whatever its length.
func isAzureLinkID(t proxyproto.TLV) bool {
	return t.Type == tlvparse.PP2_TYPE_AZURE && len(t.Value) > 0 &&
		t.Value[0] == tlvparse.PP2_SUBTYPE_AZURE_PRIVATEENDPOINT_LINKID
}
