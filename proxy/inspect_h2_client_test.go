//lint:file-ignore SA1019 golang.org/x/net/http2 is deprecated in favour of net/http's own HTTP/2 since Go 1.26; issue 17 asks for x/net's framing on both inspected legs, and moving to http.Server/http.ClientConn is a separate change.

package proxy_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"

	"golang.org/x/net/http2"

	"github.com/egressd/egressd/acl"
)

// TestXNetH2ClientThroughABump: golang.org/x/net/http2's own client (no
// net/http fallback to HTTP/1.1 possible) speaks HTTP/2 through a bumped
// tunnel to an h2 origin, sees the minted certificate, and gets 421 for a
// stream whose :authority names another host.
func TestXNetH2ClientThroughABump(t *testing.T) {
	pki := newTrustSet(t)
	o := startH2Origin(t, pki.leaf(t, leafSpec{names: []string{"api.origin.test"}}, nil),
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprintf(w, "h%d %s", r.ProtoMajor, r.Host) }))
	s := startProxy(t, withInspection(pki, acl.TLSInspectionConfig{Mode: "bump"}))
	authority := "api.origin.test:" + o.port
	var state tls.ConnectionState
	tr := &http2.Transport{DialTLSContext: func(_ context.Context, _, addr string, _ *tls.Config) (net.Conn, error) {
		tc, err := tlsVia(s.addr, addr, "api.origin.test", pki.corpPool, "h2")
		if err == nil {
			state = tc.ConnectionState()
		}
		return tc, err
	}}
	t.Cleanup(tr.CloseIdleConnections)
	client := &http.Client{Transport: tr, Timeout: ioTimeout}

	resp, err := client.Get("https://" + authority + "/")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.ProtoMajor != 2 || string(b) != "h2 "+authority {
		t.Fatalf("GET = %s %q, want HTTP/2 on both legs", resp.Proto, b)
	}
	if state.NegotiatedProtocol != "h2" || state.PeerCertificates[0].CheckSignatureFrom(pki.corpCA) != nil {
		t.Errorf("client leg ALPN %q, leaf issuer %q: want h2 and the corporate CA", state.NegotiatedProtocol, state.PeerCertificates[0].Issuer)
	}

	req, _ := http.NewRequest("GET", "https://"+authority+"/x", nil)
	req.Host = "other.origin.test:" + o.port
	resp, err = client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMisdirectedRequest {
		t.Errorf("stream with :authority other.origin.test = %d, want 421", resp.StatusCode)
	}
}
