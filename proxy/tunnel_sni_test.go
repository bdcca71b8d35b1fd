package proxy_test

// Tests of how a CONNECT tunnel is decided from its ClientHello (issue 12,
// bypasses 2 and 5): the SNI and the CONNECT host are decided together,
// and a tunnel whose hello never completes is not spliced unchecked.

import (
	"bufio"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/egressd/egressd/acl"
	"github.com/egressd/egressd/tlsinspect"
)

// TestSNIOnSpliceListDoesNotEscapeInspection: with mode bump, a tunnel
// whose CONNECT host and SNI differ in whether they are inspected is
// closed, in both directions, so an SNI on the splice list cannot carry
// requests to an inspected host past its path rules. When both names are
// inspected the tunnel is bumped for the SNI. Every line carries the SNI.
func TestSNIOnSpliceListDoesNotEscapeInspection(t *testing.T) {
	pki := newTrustSet(t)
	names := []string{"api.origin.test", "spliced.origin.test", "burst.origin.test"}
	o := startTLSOrigin(t, pki.leaf(t, leafSpec{names: names}, nil),
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "origin "+r.URL.Path) }))
	s := startProxy(t, withInspection(pki, acl.TLSInspectionConfig{Mode: "bump", Splice: []string{"spliced.origin.test"}}), withACL(func(c *acl.Config) {
		c.Tenants[0].Rules = append([]acl.RuleConfig{
			{Name: "no-admin", Action: "deny", Domains: []string{"api.origin.test", "burst.origin.test"}, Paths: []string{"/admin"}},
		}, c.Tenants[0].Rules...)
	}))

	tests := []struct {
		name, connect, sni string
		wantBump           bool
	}{
		{name: "inspected host, SNI on the splice list", connect: "api.origin.test", sni: "spliced.origin.test"},
		{name: "spliced host, SNI of an inspected host", connect: "spliced.origin.test", sni: "api.origin.test"},
		{name: "both inspected", connect: "api.origin.test", sni: "burst.origin.test", wantBump: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := o.requests.Load()
			// Trust both roots: a spliced tunnel would verify with the
			// origin's own certificate, so only the proxy can stop it.
			roots := pki.originPool.Clone()
			roots.AddCert(pki.corpCA)
			tconn, err := tlsVia(s.addr, tc.connect+":"+o.port, tc.sni, roots)
			if !tc.wantBump {
				if err == nil {
					resp, body := exchange(t, tconn, bufio.NewReader(tconn), "GET /admin HTTP/1.1\r\nHost: "+tc.sni+"\r\nConnection: close\r\n\r\n", "GET")
					tconn.Close()
					t.Fatalf("tunnel passed: GET /admin = %d %q, want the tunnel closed", resp.StatusCode, body)
				}
				if n := o.requests.Load() - before; n != 0 {
					t.Errorf("origin served %d requests", n)
				}
				e := s.waitKind(t, "connect", tc.connect, "")
				checkAccessFields(t, e, map[string]string{"status": "200", "error": "sni_inspection_mismatch", "sni": tc.sni})
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer tconn.Close()
			leaf := tconn.ConnectionState().PeerCertificates[0]
			if leaf.CheckSignatureFrom(pki.corpCA) != nil || len(leaf.DNSNames) != 1 || leaf.DNSNames[0] != tc.sni {
				t.Errorf("leaf %v from %q, want one minted by the corporate CA for %s", leaf.DNSNames, leaf.Issuer, tc.sni)
			}
			resp, body := exchange(t, tconn, bufio.NewReader(tconn), "GET /admin HTTP/1.1\r\nHost: "+tc.sni+":"+o.port+"\r\n\r\n", "GET")
			if resp.StatusCode != 403 {
				t.Errorf("GET /admin inside the bump = %d %q, want 403 from the path rule", resp.StatusCode, body)
			}
			tconn.Close()
			e := s.waitKind(t, "bumped_tunnel", tc.connect, "")
			checkAccessFields(t, e, map[string]string{"sni": tc.sni, "error": "<absent>"})
		})
	}
	// A matching SNI is logged too.
	tconn, err := tlsVia(s.addr, "spliced.origin.test:"+o.port, "spliced.origin.test", pki.originPool)
	if err != nil {
		t.Fatal(err)
	}
	tconn.Close()
	s.waitAccess(t, "spliced tunnel with its SNI", func(e map[string]any) bool {
		return accessField(e, "kind") == "connect" && accessField(e, "host") == "spliced.origin.test" &&
			accessField(e, "sni") == "spliced.origin.test" && accessField(e, "error") == "<absent>"
	})
}

// partialHello returns the first n bytes of a real ClientHello for sni.
func partialHello(t *testing.T, sni string, n int) []byte {
	t.Helper()
	a, b := net.Pipe()
	defer a.Close()
	go func() {
		tls.Client(b, &tls.Config{ServerName: sni, InsecureSkipVerify: true}).Handshake() //nolint:gosec // Only its hello is used.
		b.Close()
	}()
	buf := make([]byte, n)
	a.SetReadDeadline(time.Now().Add(ioTimeout))
	if _, err := io.ReadFull(a, buf); err != nil {
		t.Fatalf("capture ClientHello: %v", err)
	}
	return buf
}

// TestIncompleteClientHelloIsNotSpliced: a client that stays silent past
// the peek timeout, or sends part of a ClientHello and waits, leaves the
// SNI unchecked; under sni_check enforce, or when the tunnel is to be
// inspected (even with non_tls: splice), it is closed and logged, and the
// upstream receives nothing. Under sni_check report it is spliced and the
// line says the SNI went unchecked.
func TestIncompleteClientHelloIsNotSpliced(t *testing.T) {
	pki := newTrustSet(t)
	var got atomic.Int64
	port := portOf(t, startTCPServer(t, func(c *net.TCPConn) {
		n, _ := io.Copy(c, c) // an echo that never speaks first
		got.Add(n)
	}))
	// Part of a hello naming a host the tenant may not reach: completing
	// it after the splice would be domain fronting.
	part := partialHello(t, "forbidden.test", 40)

	tests := []struct {
		name     string
		ti       acl.TLSInspectionConfig
		nonTLS   string
		send     []byte
		wantPass bool
		wantErr  string
	}{
		{name: "silent client, enforce", send: nil, wantErr: "client_hello_timeout"},
		{name: "partial hello, enforce", send: part, wantErr: "client_hello_timeout"},
		{name: "silent client, bump with non_tls splice", ti: acl.TLSInspectionConfig{Mode: "bump", SNICheck: "report"}, nonTLS: "splice", wantErr: "client_hello_timeout"},
		{name: "silent client, report", ti: acl.TLSInspectionConfig{SNICheck: "report"}, wantPass: true, wantErr: "sni_unchecked"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := startProxy(t, withInspection(pki, tc.ti), withInspectConfig(func(c *tlsinspect.Config) { c.NonTLS = tc.nonTLS }))
			before := got.Load()
			c, br, err := openTunnel(s.addr, "echo.origin.test:"+port)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.Write(tc.send)
			// Past the 3 s peek timeout, the client speaks.
			time.Sleep(3500 * time.Millisecond)
			late := []byte("late bytes\n")
			c.Write(late)
			if tc.wantPass {
				c.(*net.TCPConn).CloseWrite()
				echo, err := io.ReadAll(br)
				if err != nil || string(echo) != string(late) {
					t.Errorf("echo %q (%v), want %q", echo, err, late)
				}
			} else {
				expectClosed(t, c, 5*time.Second)
			}
			e := s.waitKind(t, "connect", "echo.origin.test", "")
			checkAccessFields(t, e, map[string]string{"status": "200", "error": tc.wantErr})
			if !tc.wantPass {
				time.Sleep(100 * time.Millisecond)
				if n := got.Load() - before; n != 0 {
					t.Errorf("upstream received %d bytes of a refused tunnel", n)
				}
				if len(s.events.FilterMessage("tunnel closed: no complete ClientHello in time").All()) != 1 {
					t.Errorf("want one event for the refused tunnel; events: %v", s.events.All())
				}
			}
			if m := s.certs.mints.Load(); m != 0 {
				t.Errorf("%d leaves minted, want 0", m)
			}
		})
	}
}
