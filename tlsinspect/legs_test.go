package tlsinspect

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/egressd/egressd/internal/testpki"
)

// handshake runs a real TLS handshake over loopback TCP between a server
// using srv and a client using cli, returning the client's state and error.
func handshake(t *testing.T, srv, cli *tls.Config) (tls.ConnectionState, error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- err
			return
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		done <- tls.Server(c, srv).Handshake()
	}()
	d := tls.Dialer{NetDialer: &net.Dialer{Timeout: 5 * time.Second}, Config: cli}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := d.DialContext(ctx, "tcp", ln.Addr().String())
	var state tls.ConnectionState
	if err == nil {
		state = c.(*tls.Conn).ConnectionState()
		c.Close()
	}
	<-done
	return state, err
}

// TestClientLeg: a client that trusts the inspection CA completes a
// handshake for the host it asked for and sees the minted leaf.
func TestClientLeg(t *testing.T) {
	insp, _, ca, _ := newInspector(t, nil)
	tests := []struct {
		name       string
		host       string   // passed to TLSConfigFor
		alpn       []string // passed to TLSConfigFor
		client     *tls.Config
		wantErr    string
		wantALPN   string
		wantIssuer string
	}{
		{
			name:   "bumped host verifies",
			host:   "bump.example",
			client: &tls.Config{ServerName: "bump.example", NextProtos: []string{"h2", "http/1.1"}},
			// h2 is offered but only HTTP/1.1 can be served inside the tunnel.
			wantALPN: "http/1.1", wantIssuer: "CN=Test Inspection CA",
		},
		{
			name:    "leaf for another host is refused",
			host:    "bump.example",
			client:  &tls.Config{ServerName: "other.example"},
			wantErr: "tls: failed to verify certificate: x509: certificate is valid for bump.example, not other.example",
		},
		{
			name:    "TLS 1.1 client is refused",
			host:    "bump.example",
			client:  &tls.Config{ServerName: "bump.example", MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11},
			wantErr: "remote error: tls: protocol version not supported",
		},
		{
			name:     "h2 offered when the upstream chose h2",
			host:     "bump.example",
			alpn:     []string{ClientALPN("h2")},
			client:   &tls.Config{ServerName: "bump.example", NextProtos: []string{"h2", "http/1.1"}},
			wantALPN: "h2", wantIssuer: "CN=Test Inspection CA",
		},
		{
			name:    "h2-only client is refused when the upstream chose HTTP/1.1",
			host:    "bump.example",
			alpn:    []string{ClientALPN("http/1.1")},
			client:  &tls.Config{ServerName: "bump.example", NextProtos: []string{"h2"}},
			wantErr: "remote error: tls: no application protocol",
		},
		{
			name:    "h2-only client is refused rather than mis-served",
			host:    "bump.example",
			client:  &tls.Config{ServerName: "bump.example", NextProtos: []string{"h2"}},
			wantErr: "remote error: tls: no application protocol",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv, err := insp.TLSConfigFor(tc.host, tc.alpn...)
			if err != nil {
				t.Fatal(err)
			}
			cli := tc.client.Clone()
			cli.RootCAs = testpki.Pool(ca.Cert)
			// The minted leaf is dated from the test clock's t0.
			cli.Time = func() time.Time { return t0 }
			state, err := handshake(t, srv, cli)
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("handshake error = %v\nwant %s", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if state.NegotiatedProtocol != tc.wantALPN {
				t.Errorf("ALPN = %q, want %q", state.NegotiatedProtocol, tc.wantALPN)
			}
			if got := state.PeerCertificates[0].Issuer.String(); got != tc.wantIssuer {
				t.Errorf("issuer = %q, want %q", got, tc.wantIssuer)
			}
		})
	}
}

// upstream starts a loopback HTTPS origin presenting cert.
func upstream(t *testing.T, cert tls.Certificate) string {
	t.Helper()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "origin")
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	// Rejected handshakes are the point of these tests, not noise to print.
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String()
}

// TestUpstreamVerification: the proxy's own leg must refuse any upstream
// certificate a browser would refuse, unless the host is explicitly insecure.
func TestUpstreamVerification(t *testing.T) {
	dir := t.TempDir()
	root := issue(t, testpki.Spec{CommonName: "Origin Test Root", IsCA: true})
	stranger := issue(t, testpki.Spec{CommonName: "Unknown Root", IsCA: true})
	now := time.Now()
	leaf := func(s testpki.Spec, issuer *testpki.Cert) tls.Certificate {
		s.Parent = issuer
		if s.NotBefore.IsZero() {
			s.NotBefore, s.NotAfter = now.Add(-time.Hour), now.Add(time.Hour)
		}
		return issue(t, s).TLS()
	}
	good := leaf(testpki.Spec{CommonName: "origin.test", Names: []string{"origin.test"}, IsCA: true}, root)
	expired := leaf(testpki.Spec{CommonName: "origin.test", Names: []string{"origin.test"}, NotBefore: now.Add(-48 * time.Hour), NotAfter: now.Add(-24 * time.Hour), IsCA: true}, root)
	wrongName := leaf(testpki.Spec{CommonName: "other.test", Names: []string{"other.test"}, IsCA: true}, root)
	unknown := leaf(testpki.Spec{CommonName: "origin.test", Names: []string{"origin.test"}, IsCA: true}, stranger)
	legacy := leaf(testpki.Spec{CommonName: "legacy.test", Names: []string{"legacy.test", "www.legacy.test"}, IsCA: true}, stranger)
	ipLeaf := leaf(testpki.Spec{CommonName: "127.0.0.1", Names: []string{"127.0.0.1"}, IsCA: true}, root)

	insp, _, _, _ := newInspector(t, func(c *Config) {
		c.UpstreamRoots = []string{writePEM(t, dir, "roots.pem", root.CertBlock())}
		c.InsecureUpstream = []string{"Legacy.Test"}
	})

	tests := []struct {
		name       string
		cert       tls.Certificate
		serverName string
		wantErr    string
		check      func(error) bool
	}{
		{name: "signed by an upstream_roots root", cert: good, serverName: "origin.test"},
		{name: "IP SAN for an IP target", cert: ipLeaf, serverName: "127.0.0.1"},
		{
			name: "expired", cert: expired, serverName: "origin.test",
			wantErr: "tls: failed to verify certificate: x509: certificate has expired or is not yet valid: ",
			check: func(err error) bool {
				var ce x509.CertificateInvalidError
				return errors.As(err, &ce) && ce.Reason == x509.Expired
			},
		},
		{
			name: "wrong name", cert: wrongName, serverName: "origin.test",
			wantErr: "tls: failed to verify certificate: x509: certificate is valid for other.test, not origin.test",
			check:   func(err error) bool { var he x509.HostnameError; return errors.As(err, &he) },
		},
		{
			name: "unknown issuer", cert: unknown, serverName: "origin.test",
			wantErr: "tls: failed to verify certificate: x509: certificate signed by unknown authority",
			check:   func(err error) bool { var ue x509.UnknownAuthorityError; return errors.As(err, &ue) },
		},
		// The escape hatch: exact host, matched case-insensitively.
		{name: "insecure_upstream host skips verification", cert: legacy, serverName: "legacy.test"},
		{
			name: "insecure_upstream is exact, not a suffix", cert: legacy, serverName: "www.legacy.test",
			wantErr: "tls: failed to verify certificate: x509: certificate signed by unknown authority",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			addr := upstream(t, tc.cert)
			cfg := insp.UpstreamConfig(tc.serverName)
			if cfg.ServerName != tc.serverName {
				t.Fatalf("ServerName = %q, want %q", cfg.ServerName, tc.serverName)
			}
			d := tls.Dialer{NetDialer: &net.Dialer{Timeout: 5 * time.Second}, Config: cfg}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			c, err := d.DialContext(ctx, "tcp", addr)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("dial: %v", err)
				}
				defer c.Close()
				if got := c.(*tls.Conn).ConnectionState().NegotiatedProtocol; got != "http/1.1" {
					t.Errorf("ALPN = %q, want http/1.1", got)
				}
				return
			}
			if err == nil {
				c.Close()
				t.Fatalf("dial succeeded, want %s", tc.wantErr)
			}
			msg := err.Error()
			if tc.name == "expired" {
				// The tail names the current time, so only the head is fixed.
				msg = msg[:min(len(msg), len(tc.wantErr))]
			}
			if msg != tc.wantErr {
				t.Fatalf("dial error = %v\nwant %s", err, tc.wantErr)
			}
			if tc.check != nil && !tc.check(err) {
				t.Fatalf("dial error %v has the wrong type", err)
			}
		})
	}
	if !insp.Insecure("LEGACY.test.") || insp.Insecure("origin.test") || insp.Insecure("") {
		t.Fatal("Insecure() does not match exactly the configured hosts")
	}
}

// TestALPNFollowsTheUpstream: the upstream is offered h2 only for a client
// that offered it, and the client is offered h2 only when the upstream
// chose it, so an h2 stream always has an h2 stream behind it.
func TestALPNFollowsTheUpstream(t *testing.T) {
	for _, tc := range []struct {
		client []string
		want   string
	}{
		{client: nil, want: "http/1.1"},
		{client: []string{"http/1.1"}, want: "http/1.1"},
		{client: []string{"h2"}, want: "h2 http/1.1"},
		{client: []string{"http/1.1", "h2"}, want: "h2 http/1.1"},
		{client: []string{"spdy/3", "acme-tls/1"}, want: "http/1.1"},
	} {
		if got := strings.Join(UpstreamALPN(tc.client), " "); got != tc.want {
			t.Errorf("UpstreamALPN(%q) = %q, want %q", tc.client, got, tc.want)
		}
	}
	for up, want := range map[string]string{"h2": "h2", "http/1.1": "http/1.1", "": "http/1.1"} {
		if got := ClientALPN(up); got != want {
			t.Errorf("ClientALPN(%q) = %q, want %q", up, got, want)
		}
	}
}
