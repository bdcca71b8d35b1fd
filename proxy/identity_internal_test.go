package proxy

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/netip"
	"testing"

	proxyproto "github.com/pires/go-proxyproto"
	"github.com/pires/go-proxyproto/tlvparse"

	"github.com/egressd/egressd/acl"
	"github.com/egressd/egressd/metrics"
)

// These tests drive readIdentity, identityFromHeader and findLinkID on
// byte strings, without a listener: every outcome of reading a PROXY
// header, and what each leaves unread for the HTTP parser.

const requestLine = "GET http://origin.test/ HTTP/1.1\r\n\r\n"

var (
	lbPeer      = netip.MustParseAddrPort("10.9.0.4:51000")  // inside trustedLB
	strangerLB  = netip.MustParseAddrPort("192.0.2.7:51000") // outside it
	clientAddr  = netip.MustParseAddrPort("10.2.0.7:40000")
	trustedLB   = []netip.Prefix{netip.MustParsePrefix("10.9.0.0/16")}
	pepDestAddr = netip.MustParseAddrPort("10.2.128.100:3128")
)

// linkIDTLV is the Azure private endpoint TLV: subtype 0x01, then the
// LinkID as a little-endian uint32.
func linkIDTLV(id uint32) proxyproto.TLV {
	v := []byte{tlvparse.PP2_SUBTYPE_AZURE_PRIVATEENDPOINT_LINKID, 0, 0, 0, 0}
	binary.LittleEndian.PutUint32(v[1:], id)
	return proxyproto.TLV{Type: tlvparse.PP2_TYPE_AZURE, Value: v}
}

func v2Header(t *testing.T, cmd proxyproto.ProtocolVersionAndCommand, src, dst netip.AddrPort, tlvs ...proxyproto.TLV) []byte {
	t.Helper()
	fam := proxyproto.TCPv4
	if src.Addr().Is6() && !src.Addr().Is4In6() {
		fam = proxyproto.TCPv6
	}
	h := &proxyproto.Header{Version: 2, Command: cmd, TransportProtocol: fam,
		SourceAddr: net.TCPAddrFromAddrPort(src), DestinationAddr: net.TCPAddrFromAddrPort(dst)}
	if len(tlvs) > 0 {
		if err := h.SetTLVs(tlvs); err != nil {
			t.Fatal(err)
		}
	}
	b, err := h.Format()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// unspecV2 is a v2 header with the given command, the UNSPEC family and
// an address block of extra bytes, as Azure load balancer probes send.
func unspecV2(cmd byte, extra []byte) []byte {
	b := append([]byte(nil), proxyproto.SIGV2...)
	b = append(b, cmd, 0x00, 0, 0)
	binary.BigEndian.PutUint16(b[14:16], uint16(len(extra)))
	return append(b, extra...)
}

func TestReadIdentityOutcomes(t *testing.T) {
	t.Parallel()
	v1 := "PROXY TCP4 10.2.0.7 10.2.128.100 40000 3128\r\n"
	tests := []struct {
		name    string
		mode    ProxyProtocol
		peer    netip.AddrPort
		in      []byte
		want    metrics.HeaderResult
		probe   bool
		client  netip.AddrPort // the identity's Client
		linkID  uint32
		hasLink bool
		// rest is what must be left for the HTTP parser ("" when the
		// connection is refused and nothing more is read).
		rest string
		// untouched: not a byte may be read (an untrusted peer).
		untouched bool
	}{
		{name: "off ignores a header and keeps the socket address", mode: PPOff, peer: lbPeer,
			in: []byte(v1 + requestLine), want: metrics.HeaderNone, client: lbPeer, rest: v1 + requestLine},
		{name: "required from an untrusted peer reads nothing", mode: PPRequired, peer: strangerLB,
			in: []byte(v1 + requestLine), want: metrics.HeaderUntrusted, client: strangerLB, rest: v1 + requestLine, untouched: true},
		{name: "required without a header is missing", mode: PPRequired, peer: lbPeer,
			in: []byte(requestLine), want: metrics.HeaderMissing, client: lbPeer},
		{name: "optional without a header is none", mode: PPOptional, peer: strangerLB,
			in: []byte(requestLine), want: metrics.HeaderNone, client: strangerLB, rest: requestLine},
		{name: "optional header from an untrusted peer", mode: PPOptional, peer: strangerLB,
			in: []byte(v1 + requestLine), want: metrics.HeaderUntrusted, client: strangerLB},
		{name: "v1 header names the client", mode: PPRequired, peer: lbPeer,
			in: []byte(v1 + requestLine), want: metrics.HeaderOK, client: clientAddr, rest: requestLine},
		{name: "v2 header with LinkID", mode: PPRequired, peer: lbPeer,
			in:   append(v2Header(t, proxyproto.PROXY, clientAddr, pepDestAddr, linkIDTLV(0x01020304)), requestLine...),
			want: metrics.HeaderOK, client: clientAddr, linkID: 0x01020304, hasLink: true, rest: requestLine},
		{name: "v2 IPv4-mapped client is unmapped", mode: PPRequired, peer: lbPeer,
			in: append(v2Header(t, proxyproto.PROXY, netip.MustParseAddrPort("[::ffff:10.2.0.7]:40000"),
				netip.MustParseAddrPort("[::ffff:10.2.128.100]:3128")), requestLine...),
			want: metrics.HeaderOK, client: clientAddr, rest: requestLine},
		{name: "v2 LOCAL with a LinkID TLV is a probe with no tenant", mode: PPRequired, peer: lbPeer,
			in:   append(v2Header(t, proxyproto.LOCAL, clientAddr, pepDestAddr, linkIDTLV(7)), requestLine...),
			want: metrics.HeaderLocal, probe: true, rest: requestLine},
		{name: "address-less v2 PROXY is a probe", mode: PPRequired, peer: lbPeer,
			in: append(unspecV2(0x21, []byte{1, 2, 3}), requestLine...), want: metrics.HeaderLocal, probe: true,
			client: lbPeer, rest: requestLine},
		{name: "address-less v2 from an untrusted peer", mode: PPOptional, peer: strangerLB,
			in: append(unspecV2(0x21, nil), requestLine...), want: metrics.HeaderUntrusted, client: strangerLB},
		{name: "short LinkID TLV is malformed", mode: PPRequired, peer: lbPeer,
			in: append(v2Header(t, proxyproto.PROXY, clientAddr, pepDestAddr,
				proxyproto.TLV{Type: tlvparse.PP2_TYPE_AZURE, Value: []byte{tlvparse.PP2_SUBTYPE_AZURE_PRIVATEENDPOINT_LINKID, 1, 2}}), requestLine...),
			want: metrics.HeaderMalformed, client: clientAddr},
		{name: "two LinkID TLVs are malformed", mode: PPRequired, peer: lbPeer,
			in:   append(v2Header(t, proxyproto.PROXY, clientAddr, pepDestAddr, linkIDTLV(1), linkIDTLV(2)), requestLine...),
			want: metrics.HeaderMalformed, client: clientAddr},
		{name: "garbage after the v2 signature is malformed", mode: PPRequired, peer: lbPeer,
			in:   append(append(append([]byte(nil), proxyproto.SIGV2...), 0x99, 0x11, 0, 0), requestLine...),
			want: metrics.HeaderMalformed, client: lbPeer},
		{name: "v1 with a garbage address is malformed", mode: PPRequired, peer: lbPeer,
			in: []byte("PROXY TCP4 10.2.0.999 10.2.128.100 40000 3128\r\n" + requestLine), want: metrics.HeaderMalformed, client: lbPeer},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := &Server{cfg: Config{ProxyProtocol: tc.mode}, pv: provisioned{trusted: trustedLB}}
			br := bufio.NewReaderSize(bytes.NewReader(tc.in), 4096)
			id, probe, got := s.readIdentity(br, tc.peer)
			if got != tc.want || probe != tc.probe {
				t.Fatalf("outcome %v probe %v, want %v probe %v", got, probe, tc.want, tc.probe)
			}
			if id.Client != tc.client || id.LB != tc.peer {
				t.Errorf("identity client %v lb %v, want client %v lb %v", id.Client, id.LB, tc.client, tc.peer)
			}
			if id.LinkID != tc.linkID || id.HasLinkID != tc.hasLink {
				t.Errorf("LinkID %#x (%v), want %#x (%v)", id.LinkID, id.HasLinkID, tc.linkID, tc.hasLink)
			}
			if tc.untouched && br.Buffered() != 0 {
				t.Errorf("%d bytes read from a peer that must not be parsed", br.Buffered())
			}
			if tc.rest != "" {
				rest, _ := io.ReadAll(br)
				if string(rest) != tc.rest {
					t.Errorf("left for the HTTP parser %q, want %q", rest, tc.rest)
				}
			}
		})
	}
}

// timeoutReader fails every read with a net.Error timeout, as a
// connection whose read-header deadline passed does.
type timeoutReader struct{}

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

func (timeoutReader) Read([]byte) (int, error) { return 0, timeoutErr{} }

// TestReadIdentityTimeoutIsNotMalformed: a header that does not arrive
// before the deadline is counted as a timeout, so a slow load balancer is
// told apart from a broken one. (A v1 line cut short is malformed by
// go-proxyproto's design: it must arrive in one read.)
func TestReadIdentityTimeoutIsNotMalformed(t *testing.T) {
	t.Parallel()
	for name, sent := range map[string][]byte{
		"nothing":             nil,
		"half a v2 signature": proxyproto.SIGV2[:8],
	} {
		t.Run(name, func(t *testing.T) {
			s := &Server{cfg: Config{ProxyProtocol: PPRequired}, pv: provisioned{trusted: trustedLB}}
			r := bufio.NewReaderSize(&partialThenTimeout{b: sent}, 4096)
			if _, _, got := s.readIdentity(r, lbPeer); got != metrics.HeaderTimeout {
				t.Fatalf("outcome %v, want %v", got, metrics.HeaderTimeout)
			}
		})
	}
}

type partialThenTimeout struct{ b []byte }

func (p *partialThenTimeout) Read(b []byte) (int, error) {
	if len(p.b) == 0 {
		return timeoutReader{}.Read(b)
	}
	n := copy(b, p.b)
	p.b = p.b[n:]
	return n, nil
}

// TestSkipAddresslessV2OnlyTakesWholeUnspecProxyHeaders: the pre-parser
// for Azure's address-less probes consumes exactly one complete v2
// PROXY/UNSPEC header and leaves every other input for the real parser.
func TestSkipAddresslessV2OnlyTakesWholeUnspecProxyHeaders(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   []byte
		size int
		skip bool
		left int // bytes still buffered or unread afterwards
	}{
		{name: "proxy unspec with TLV bytes", in: append(unspecV2(0x21, []byte{0xEE, 0, 1, 9}), 'G'), size: 4096, skip: true, left: 1},
		{name: "proxy unspec, empty block", in: unspecV2(0x21, nil), size: 4096, skip: true, left: 0},
		{name: "local unspec is for the parser", in: unspecV2(0x20, nil), size: 4096, left: 16},
		{name: "proxy tcp4 is for the parser", in: append(append(append([]byte(nil), proxyproto.SIGV2...), 0x21, 0x11, 0, 0), make([]byte, 12)...), size: 4096, left: 28},
		{name: "plain HTTP is never waited on", in: []byte("GET / HTTP/1.1\r\n"), size: 4096, left: 16},
		{name: "short after the first signature byte", in: proxyproto.SIGV2[:5], size: 4096, left: 5},
		{name: "declared length past the buffer", in: unspecV2(0x21, make([]byte, 100)), size: 64, left: 116},
		{name: "declared length past the input", in: unspecV2(0x21, make([]byte, 10))[:20], size: 4096, left: 20},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			br := bufio.NewReaderSize(bytes.NewReader(tc.in), tc.size)
			if got := skipAddresslessV2(br); got != tc.skip {
				t.Fatalf("skipped %v, want %v", got, tc.skip)
			}
			rest := 0
			for {
				if _, err := br.ReadByte(); err != nil {
					break
				}
				rest++
			}
			if rest != tc.left {
				t.Errorf("%d bytes left, want %d", rest, tc.left)
			}
		})
	}
}

func TestFindLinkID(t *testing.T) {
	t.Parallel()
	other := proxyproto.TLV{Type: tlvparse.PP2_TYPE_AZURE, Value: []byte{0x02, 1, 2, 3, 4}} // another Azure subtype
	tests := []struct {
		name    string
		tlvs    []proxyproto.TLV
		id      uint32
		found   bool
		wantErr error
	}{
		{name: "none", tlvs: nil},
		{name: "one", tlvs: []proxyproto.TLV{linkIDTLV(0xdeadbeef)}, id: 0xdeadbeef, found: true},
		{name: "beside other TLVs", tlvs: []proxyproto.TLV{{Type: proxyproto.PP2_TYPE_AUTHORITY, Value: []byte("x")}, other, linkIDTLV(42)}, id: 42, found: true},
		{name: "other Azure subtype only", tlvs: []proxyproto.TLV{other}},
		{name: "empty Azure value is not a LinkID", tlvs: []proxyproto.TLV{{Type: tlvparse.PP2_TYPE_AZURE}}},
		{name: "short", tlvs: []proxyproto.TLV{{Type: tlvparse.PP2_TYPE_AZURE, Value: []byte{0x01, 1, 2, 3}}}, wantErr: errBadAzureTLV},
		{name: "subtype alone", tlvs: []proxyproto.TLV{{Type: tlvparse.PP2_TYPE_AZURE, Value: []byte{0x01}}}, wantErr: errBadAzureTLV},
		{name: "long", tlvs: []proxyproto.TLV{{Type: tlvparse.PP2_TYPE_AZURE, Value: []byte{0x01, 1, 2, 3, 4, 5}}}, wantErr: errBadAzureTLV},
		{name: "repeated, same value", tlvs: []proxyproto.TLV{linkIDTLV(5), linkIDTLV(5)}, wantErr: errBadAzureTLV},
		{name: "repeated, different values", tlvs: []proxyproto.TLV{linkIDTLV(5), linkIDTLV(6)}, wantErr: errBadAzureTLV},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			id, found, err := findLinkID(tc.tlvs)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("error %v, want %v", err, tc.wantErr)
			}
			if id != tc.id || found != tc.found {
				t.Errorf("got %#x found %v, want %#x found %v", id, found, tc.id, tc.found)
			}
		})
	}
}

// TestIdentityFromHeaderWithoutTCPAddressesIsAProbe: a UDP or unix
// header carries no TCP client, so it identifies nobody.
func TestIdentityFromHeaderWithoutTCPAddressesIsAProbe(t *testing.T) {
	t.Parallel()
	h := &proxyproto.Header{Version: 2, Command: proxyproto.PROXY, TransportProtocol: proxyproto.UDPv4,
		SourceAddr:      &net.UDPAddr{IP: net.IPv4(10, 2, 0, 7), Port: 40000},
		DestinationAddr: &net.UDPAddr{IP: net.IPv4(10, 2, 128, 100), Port: 3128}}
	if err := h.SetTLVs([]proxyproto.TLV{linkIDTLV(9)}); err != nil {
		t.Fatal(err)
	}
	id, probe, err := identityFromHeader(h, lbPeer)
	if err != nil || !probe {
		t.Fatalf("probe %v err %v, want a probe", probe, err)
	}
	if id != (acl.Identity{LB: lbPeer}) {
		t.Errorf("identity %+v, want only the LB", id)
	}
}
