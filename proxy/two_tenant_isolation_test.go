package proxy_test

// The done-when of issue 13: two tenants on different LinkIDs share every
// origin, under concurrency, and a recording origin proves that no
// connection, byte or credential of one ever reaches the other.

import (
	"bufio"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/egressd/egressd/acl"
)

func bcryptOf(tb testing.TB, pw string) string {
	tb.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
	if err != nil {
		tb.Fatal(err)
	}
	return string(h)
}

// recordingOrigin remembers, per upstream connection, every tenant
// marker and credential it was sent, and answers each request with the
// request's own marker so the client can check it got its own answer.
type recordingOrigin struct {
	*rawOrigin
	mu sync.Mutex
	// seen maps an upstream connection to the tenants whose requests it carried.
	seen map[net.Conn]map[string]bool
	// creds records each tenant's origin credential as received.
	creds map[string]map[string]bool
	// proxyAuth counts Proxy-Authorization fields that reached the origin.
	proxyAuth int
}

func startRecordingOrigin(t *testing.T) *recordingOrigin {
	o := &recordingOrigin{seen: map[net.Conn]map[string]bool{}, creds: map[string]map[string]bool{}}
	o.rawOrigin = startRawOrigin(t, func(c net.Conn, _ *bufio.Reader, head string) bool {
		marker := ""
		if v := fieldValues(head, "X-Tenant-Marker"); len(v) == 1 {
			marker = v[0]
		}
		tenant, _, _ := strings.Cut(marker, "-")
		o.mu.Lock()
		if o.seen[c] == nil {
			o.seen[c] = map[string]bool{}
		}
		o.seen[c][tenant] = true
		for _, a := range fieldValues(head, "Authorization") {
			if o.creds[tenant] == nil {
				o.creds[tenant] = map[string]bool{}
			}
			o.creds[tenant][a] = true
		}
		o.proxyAuth += len(fieldValues(head, "Proxy-Authorization"))
		o.mu.Unlock()
		body := "for " + marker
		fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
		return true
	})
	return o
}

// tenantEcho is a tunnel origin that checks every line on a connection
// names the same tenant, and echoes it.
func tenantEcho(t *testing.T, mixed *int32, mu *sync.Mutex) string {
	return startTCPServer(t, func(c *net.TCPConn) {
		br := bufio.NewReader(c)
		first := ""
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				return
			}
			tenant, _, _ := strings.Cut(line, "-")
			if first == "" {
				first = tenant
			} else if tenant != first {
				mu.Lock()
				*mixed++
				mu.Unlock()
			}
			if _, err := io.WriteString(c, line); err != nil {
				return
			}
		}
	})
}

// TestTwoTenantsSharingEveryOriginNeverSeeEachOther: alpha and beta, on
// different LinkIDs with their own proxy users, send keep-alive requests
// (some with connection-oriented NTLM authorization) and CONNECT tunnels
// to the same origins at once. Every response is the one asked for,
// every upstream connection carried one tenant only, each tenant's
// origin credential reached the origin only on its own connections, no
// proxy credential reached an origin, tunnel bytes never mixed, and
// every access line names the tenant its LinkID belongs to.
func TestTwoTenantsSharingEveryOriginNeverSeeEachOther(t *testing.T) {
	const (
		workers  = 4 // per tenant and kind
		requests = 15
	)
	lo := []acl.RuleConfig{{Name: "loopback-origins", CIDRs: []string{"127.0.0.0/8"}}}
	p := startProxy(t, withPolicy(acl.Config{Tenants: []acl.TenantConfig{
		{Name: "alpha", LinkIDs: []uint32{alphaLinkID}, Rules: lo, Users: []acl.UserConfig{{Name: "alice", BCrypt: bcryptOf(t, "alice-pw")}}},
		{Name: "beta", LinkIDs: []uint32{betaLinkID}, Rules: lo, Users: []acl.UserConfig{{Name: "bob", BCrypt: bcryptOf(t, "bob-pw")}}},
	}}))
	o := startRecordingOrigin(t)
	var mixed int32
	var mixedMu sync.Mutex
	echo := tenantEcho(t, &mixed, &mixedMu)

	tenants := []struct {
		name, user, pass string
		linkID           uint32
	}{
		{"alpha", "alice", "alice-pw", alphaLinkID},
		{"beta", "bob", "bob-pw", betaLinkID},
	}
	deadline := time.Now().Add(60 * time.Second)
	var wg sync.WaitGroup
	errs := make(chan error, 4*workers*requests)
	for _, tn := range tenants {
		proxyAuth := "Proxy-Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte(tn.user+":"+tn.pass)) + "\r\n"
		for w := range workers {
			wg.Go(func() { // requests: keep-alive for odd workers, a fresh client connection per request for even ones
				var c net.Conn
				var br *bufio.Reader
				defer func() {
					if c != nil {
						c.Close()
					}
				}()
				for i := range requests {
					if c == nil || w%2 == 0 {
						if c != nil {
							c.Close()
						}
						var err error
						if c, err = net.DialTimeout("tcp", p.addr, ioTimeout); err != nil {
							errs <- err
							return
						}
						c.SetDeadline(deadline)
						if _, err := ppv2Header(t, "10.2.0.7:40000", "10.2.128.100:3128", tn.linkID).WriteTo(c); err != nil {
							errs <- err
							return
						}
						br = bufio.NewReader(c)
					}
					marker := fmt.Sprintf("%s-%d-%d", tn.name, w, i)
					auth := "Authorization: Bearer " + tn.name + "-origin-token\r\n"
					if w == 1 && i == requests-1 {
						// Connection-oriented auth: pinned to this client connection.
						auth = "Authorization: NTLM " + tn.name + "-ntlm\r\n"
					}
					fmt.Fprintf(c, "GET http://%s/%s HTTP/1.1\r\nHost: %s\r\n%sX-Tenant-Marker: %s\r\n%s\r\n", o.addr, marker, o.addr, proxyAuth, marker, auth)
					resp, err := http.ReadResponse(br, &http.Request{Method: "GET"})
					if err != nil {
						errs <- fmt.Errorf("%s: %w", marker, err)
						return
					}
					body, err := io.ReadAll(resp.Body)
					resp.Body.Close()
					if err != nil || resp.StatusCode != 200 || string(body) != "for "+marker {
						errs <- fmt.Errorf("%s: got %d %q (%v), want its own answer", marker, resp.StatusCode, body, err)
						return
					}
					// Let the proxy park the upstream connection, so the
					// pool, not a fresh dial, serves whoever asks next.
					time.Sleep(time.Millisecond)
				}
			})
			wg.Go(func() { // tunnels
				for i := range requests / 5 {
					c, err := net.DialTimeout("tcp", p.addr, ioTimeout)
					if err != nil {
						errs <- err
						return
					}
					c.SetDeadline(deadline)
					ppv2Header(t, "10.2.0.7:40000", "10.2.128.100:3128", tn.linkID).WriteTo(c)
					br := bufio.NewReader(c)
					fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n%s\r\n", echo, echo, proxyAuth)
					resp, err := http.ReadResponse(br, &http.Request{Method: "CONNECT"})
					if err != nil || resp.StatusCode != 200 {
						c.Close()
						errs <- fmt.Errorf("%s CONNECT: %v %v", tn.name, resp, err)
						return
					}
					for j := range 3 {
						line := fmt.Sprintf("%s-tunnel-%d-%d-%d\n", tn.name, w, i, j)
						io.WriteString(c, line)
						got, err := br.ReadString('\n')
						if err != nil || got != line {
							c.Close()
							errs <- fmt.Errorf("tunnel echo %q, got %q %v", line, got, err)
							return
						}
					}
					c.Close()
				}
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}

	o.mu.Lock()
	defer o.mu.Unlock()
	for c, ts := range o.seen {
		if len(ts) != 1 {
			t.Errorf("upstream connection %s carried requests of %v", c.RemoteAddr(), ts)
		}
	}
	for tenant, creds := range o.creds {
		for cred := range creds {
			if !strings.Contains(cred, " "+tenant+"-") {
				t.Errorf("origin received credential %q on a %s request", cred, tenant)
			}
		}
	}
	if o.proxyAuth != 0 {
		t.Errorf("%d Proxy-Authorization fields reached the origin", o.proxyAuth)
	}
	if len(o.seen) < 2 {
		t.Errorf("the origin saw %d upstream connections, want at least one per tenant", len(o.seen))
	}
	mixedMu.Lock()
	if mixed != 0 {
		t.Errorf("%d tunnel lines reached an upstream connection of another tenant", mixed)
	}
	mixedMu.Unlock()

	want := map[string]uint32{"alpha": alphaLinkID, "beta": betaLinkID}
	entries := p.accessEntries()
	if len(entries) < 2*workers*requests {
		t.Errorf("%d access lines, want at least %d", len(entries), 2*workers*requests)
	}
	for _, e := range entries {
		tenant, _ := e["tenant"].(string)
		if e["link_id"] != want[tenant] {
			t.Errorf("access line for tenant %q has link_id %v: %v", tenant, e["link_id"], e)
		}
		if path, _ := e["path"].(string); path != "" && !strings.HasPrefix(path, "/"+tenant+"-") {
			t.Errorf("access line for tenant %q has path %q", tenant, path)
		}
		if user, _ := e["user"].(string); user != "" && user != map[string]string{"alpha": "alice", "beta": "bob"}[tenant] {
			t.Errorf("access line for tenant %q names user %q", tenant, user)
		}
	}
}
