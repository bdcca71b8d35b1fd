package proxy_test

import (
	"bufio"
	"io"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	proxyproto "github.com/pires/go-proxyproto"

	"github.com/egressd/egressd/acl"
)

// linkIDOnlyACL recognises tenant demo by its LinkID alone, so a request
// is allowed only if the PROXY header really granted that LinkID.
func linkIDOnlyACL(c *acl.Config) { c.Tenants[0].SourceCIDRs = nil }

// TestLocalHeaderTLVsNeverGrantATenant: a PROXY v2 LOCAL header is a load
// balancer talking for itself (haproxy proxy-protocol.txt §2.2: the
// receiver must ignore the address block), and the TLVs ride in that
// block. A LOCAL header carrying the LinkID TLV of a tenant is answered as
// a probe and never forwards anything under that tenant.
func TestLocalHeaderTLVsNeverGrantATenant(t *testing.T) {
	t.Parallel()
	o := okOrigin(t)
	p := startProxy(t, withConfig(requiredPP), withACL(linkIDOnlyACL))
	for name, family := range map[string]proxyproto.AddressFamilyAndProtocol{"tcp4": proxyproto.TCPv4, "unspec": proxyproto.UNSPEC} {
		t.Run(name, func(t *testing.T) {
			h := &proxyproto.Header{Version: 2, Command: proxyproto.LOCAL, TransportProtocol: family}
			if family == proxyproto.TCPv4 {
				h.SourceAddr = net.TCPAddrFromAddrPort(netip.MustParseAddrPort("10.2.0.7:40000"))
				h.DestinationAddr = net.TCPAddrFromAddrPort(netip.MustParseAddrPort("10.2.128.100:3128"))
			}
			if err := h.SetTLVs([]proxyproto.TLV{azureLinkID(demoLinkID)}); err != nil {
				t.Fatal(err)
			}
			c := dial(t, p.addr)
			c.Write(append(headerBytes(t, h), "GET http://"+o.addr+"/local-tlv HTTP/1.1\r\nHost: "+o.addr+"\r\n\r\n"...))
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			got, _ := io.ReadAll(c)
			if strings.HasSuffix(string(got), "ok") || !strings.HasPrefix(string(got), "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n") {
				t.Fatalf("reply %q, want the probe answer and nothing from the origin", got)
			}
		})
	}
	assertNeverForwarded(t, o, "/local-tlv")
	for _, e := range p.accessEntries() {
		t.Errorf("access line for a LOCAL connection: %v", e)
	}
	assertServes(t, p, o, demoLinkID)
}

// TestTwoLinkIDTLVsCloseTheConnection: a header with two LinkID TLVs names
// two consumers at once; picking either is a guess, so it is malformed
// and the connection closes before any request is read.
func TestTwoLinkIDTLVsCloseTheConnection(t *testing.T) {
	t.Parallel()
	o := okOrigin(t)
	p := startProxy(t, withConfig(requiredPP), withACL(linkIDOnlyACL))
	for _, tc := range []struct {
		name string
		tlvs []proxyproto.TLV
	}{
		{name: "tenant then stranger", tlvs: []proxyproto.TLV{azureLinkID(demoLinkID), azureLinkID(4242)}},
		{name: "stranger then tenant", tlvs: []proxyproto.TLV{azureLinkID(4242), azureLinkID(demoLinkID)}},
		{name: "same LinkID twice", tlvs: []proxyproto.TLV{azureLinkID(demoLinkID), azureLinkID(demoLinkID)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := ppv2Header(t, "10.2.0.7:40000", "10.2.128.100:3128", 0)
			if err := h.SetTLVs(tc.tlvs); err != nil {
				t.Fatal(err)
			}
			c := dial(t, p.addr)
			c.Write(append(headerBytes(t, h), "GET http://"+o.addr+"/two-tlvs HTTP/1.1\r\nHost: "+o.addr+"\r\n\r\n"...))
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			got, _ := io.ReadAll(bufio.NewReader(c))
			if len(got) != 0 {
				t.Fatalf("reply %q, want the connection closed without an answer", got)
			}
		})
	}
	assertNeverForwarded(t, o, "/two-tlvs")
	assertServes(t, p, o, demoLinkID)
}
