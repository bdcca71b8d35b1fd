package proxy_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"

	"github.com/egressd/egressd/acl"
)

// An inspected tunnel through a parent: the first upstream connection is
// a CONNECT through the parent, and when the origin closes it, the redial
// for the next request inside the tunnel goes through the parent too.
// The child knows no names, so a direct redial would fail on DNS.
func TestParentProxyCarriesInspectedTunnelAndItsRedial(t *testing.T) {
	const host = "api.origin.test"
	pki := newTrustSet(t)
	o := startTLSOrigin(t, pki.leaf(t, leafSpec{names: []string{host}}, nil),
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Connection", "close") // every request needs a new upstream connection
			io.WriteString(w, "inspected "+r.URL.Path)
		}))
	parent := startProxy(t, withResolver(loopbackResolver(host)))
	phost, pport, _ := net.SplitHostPort(parent.addr)
	child := startProxy(t, withInspection(pki, acl.TLSInspectionConfig{Mode: "bump"}), withACL(func(c *acl.Config) {
		c.Tenants[0].Rules = []acl.RuleConfig{
			{Name: "names", Domains: []string{host}},
			{Name: "parent", CIDRs: []string{phost + "/32"}, Ports: []string{pport}},
		}
		c.Tenants[0].UpstreamProxy = &acl.UpstreamProxyConfig{URL: "http://" + parent.addr}
	}), withResolver(loopbackResolver()))

	tc, err := tlsVia(child.addr, host+":"+o.port, host, pki.corpPool)
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	br := bufio.NewReader(tc)
	for _, path := range []string{"/one", "/two"} {
		fmt.Fprintf(tc, "GET %s HTTP/1.1\r\nHost: %s:%s\r\n\r\n", path, host, o.port)
		resp, err := http.ReadResponse(br, &http.Request{Method: "GET"})
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || string(body) != "inspected "+path {
			t.Fatalf("%s: %d %q", path, resp.StatusCode, body)
		}
	}
	if n := o.requests.Load(); n != 2 {
		t.Fatalf("origin saw %d requests, want 2", n)
	}
	waitFor(t, ioTimeout, "two CONNECTs at the parent", func() bool {
		n := 0
		for _, e := range parent.accessEntries() {
			if e["method"] == "CONNECT" && e["host"] == host {
				n++
			}
		}
		return n == 2
	})
}
