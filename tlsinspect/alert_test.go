package tlsinspect

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"testing"
	"time"
)

// serverHandshakeError runs a handshake on loopback TCP (a net.Pipe has no
// buffer, so a client's alert would block behind the server's flight),
// with a minted leaf for a.test on the server side and client on the
// other end, and returns the server's error.
func serverHandshakeError(t *testing.T, client func(net.Conn)) error {
	t.Helper()
	insp, _, _, _ := newInspector(t, nil)
	cfg, err := insp.TLSConfigFor("a.test")
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		cc, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			return
		}
		defer cc.Close()
		cc.SetDeadline(time.Now().Add(5 * time.Second))
		client(cc)
	}()
	sc, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	sc.SetDeadline(time.Now().Add(5 * time.Second))
	return tls.Server(sc, cfg).Handshake()
}

func TestRejectedCertificate(t *testing.T) {
	tests := []struct {
		name   string
		client func(net.Conn)
		want   bool
	}{
		{name: "client with other roots", want: true, client: func(c net.Conn) {
			tls.Client(c, &tls.Config{ServerName: "a.test", RootCAs: x509.NewCertPool()}).Handshake()
		}},
		{name: "not TLS at all", want: false, client: func(c net.Conn) {
			io.WriteString(c, "GET / HTTP/1.1\r\nHost: a.test\r\n\r\n")
		}},
		{name: "client offers no common ALPN", want: false, client: func(c net.Conn) {
			tls.Client(c, &tls.Config{ServerName: "a.test", InsecureSkipVerify: true, NextProtos: []string{"h3-only"}}).Handshake()
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := serverHandshakeError(t, tc.client)
			if err == nil {
				t.Fatal("handshake succeeded, want a failure")
			}
			if got := RejectedCertificate(err); got != tc.want {
				t.Fatalf("RejectedCertificate(%v) = %v, want %v", err, got, tc.want)
			}
		})
	}
}
