package proxy

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/netip"
	"testing"

	proxyproto "github.com/pires/go-proxyproto"

	"github.com/egressd/egressd/metrics"
)

// Micro-benchmarks of the per-connection and per-request hot paths. Run:
//
//	go test -run '^$' -bench . -benchmem ./proxy/
//
// End-to-end figures come from the bench harness (make bench); these show
// where a regression is when those move.

func v2HeaderBytes(b *testing.B, linkID uint32) []byte {
	b.Helper()
	h := proxyproto.HeaderProxyFromAddrs(2,
		&net.TCPAddr{IP: net.ParseIP("10.2.0.7"), Port: 40000},
		&net.TCPAddr{IP: net.ParseIP("10.2.128.100"), Port: 3128})
	v := make([]byte, 5)
	v[0] = 0x01
	binary.LittleEndian.PutUint32(v[1:], linkID)
	if err := h.SetTLVs([]proxyproto.TLV{{Type: 0xEE, Value: v}}); err != nil {
		b.Fatal(err)
	}
	raw, err := h.Format()
	if err != nil {
		b.Fatal(err)
	}
	return raw
}

// BenchmarkReadIdentity: PROXY v2 header with the Azure LinkID TLV, parsed
// into an identity, as every new connection does.
func BenchmarkReadIdentity(b *testing.B) {
	raw := v2HeaderBytes(b, 1001)
	s := &Server{cfg: Config{ProxyProtocol: PPRequired, TrustedProxies: []string{"10.240.0.0/16"}}}
	s.cfg.SetDefaults()
	pv, err := s.cfg.provision()
	if err != nil {
		b.Fatal(err)
	}
	s.pv = pv
	peer := netip.MustParseAddrPort("10.240.0.5:5000")
	r := bytes.NewReader(raw)
	br := bufio.NewReaderSize(r, 4096)
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		r.Reset(raw)
		br.Reset(r)
		id, probe, outcome := s.readIdentity(br, peer)
		if outcome != metrics.HeaderOK || probe || id.LinkID != 1001 {
			b.Fatalf("outcome %s probe %v id %+v", outcome, probe, id)
		}
	}
}

// BenchmarkRequestRewrite: read and validate a typical request head, then
// write the origin-form request that goes upstream.
func BenchmarkRequestRewrite(b *testing.B) {
	for _, tc := range []struct {
		name    string
		headers int
	}{{"8-headers", 8}, {"32-headers", 32}} {
		b.Run(tc.name, func(b *testing.B) {
			var sb bytes.Buffer
			sb.WriteString("GET http://api.example.com/v1/items?page=2 HTTP/1.1\r\nHost: api.example.com\r\n")
			sb.WriteString("Connection: keep-alive, X-Hop\r\nX-Hop: 1\r\nProxy-Authorization: Basic YTpi\r\n")
			for i := 0; i < tc.headers; i++ {
				fmt.Fprintf(&sb, "X-Header-%d: value-%d-%s\r\n", i, i, "abcdefghijklmnop")
			}
			sb.WriteString("\r\n")
			raw := sb.Bytes()
			rd := bytes.NewReader(raw)
			br := bufio.NewReaderSize(rd, 4096)
			bw := bufio.NewWriterSize(io.Discard, 4096)
			var r request
			b.SetBytes(int64(len(raw)))
			b.ReportAllocs()
			for b.Loop() {
				rd.Reset(raw)
				br.Reset(rd)
				if err := readHead(br, &r.h, 64<<10); err != nil {
					b.Fatal(err)
				}
				if err := parseRequest(&r, nil); err != nil {
					b.Fatal(err)
				}
				writeRequestHead(bw, &r, "egressd")
				bw.Flush()
			}
		})
	}
}

// BenchmarkTunnelCopy: bytes through one tunnel direction over loopback
// TCP, per message size: the read/write path for small messages, the
// splice path once a read fills the buffer.
func BenchmarkTunnelCopy(b *testing.B) {
	for _, size := range []int{512, 16 << 10, 1 << 20} {
		b.Run(fmt.Sprintf("%dB", size), func(b *testing.B) {
			srcClient, srcProxy := tcpPair(b)
			dstProxy, dstServer := tcpPair(b)
			t := &tunnel{a: srcProxy, b: dstProxy}
			t.touch()
			done := make(chan int64)
			go func() { done <- t.pipe(dstProxy, srcProxy, nil) }()
			go io.Copy(io.Discard, dstServer)
			msg := make([]byte, size)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := srcClient.Write(msg); err != nil {
					b.Fatal(err)
				}
			}
			srcClient.CloseWrite()
			<-done
		})
	}
}

// tcpPair is a connected loopback TCP pair (dialed end, accepted end),
// closed when the test ends.
func tcpPair(b testing.TB) (*net.TCPConn, *net.TCPConn) {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	s := <-accepted
	b.Cleanup(func() { c.Close(); s.Close() })
	return c.(*net.TCPConn), s.(*net.TCPConn)
}
