package proxy_test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"testing"

	"github.com/egressd/egressd/proxy"
)

// upgradeOrigin switches to an echo pipe when the request it receives
// asks for an upgrade, and answers 200 "plain" otherwise, so a test sees
// from the response whether the Upgrade field got through.
func upgradeOrigin(t *testing.T) *rawOrigin {
	t.Helper()
	return startRawOrigin(t, func(c net.Conn, br *bufio.Reader, head string) bool {
		if v := fieldValues(head, "Upgrade"); len(v) > 0 {
			io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: "+v[0]+"\r\n\r\n")
			io.Copy(c, br)
			return false
		}
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nplain")
		return true
	})
}

// TestOnlyListedUpgradesAreForwarded: h2c would carry streams the policy
// never sees, and an unknown protocol bytes the log cannot describe, so an
// Upgrade that proxy.upgrades does not list is removed and the request is
// served as plain HTTP/1.1. The access log says what was asked and removed.
func TestOnlyListedUpgradesAreForwarded(t *testing.T) {
	t.Parallel()
	o := upgradeOrigin(t)
	tests := []struct {
		name     string
		upgrades []string // nil: the default
		offer    string
		switched bool
	}{
		{name: "websocket by default", offer: "websocket", switched: true},
		{name: "websocket with a version", offer: "websocket/13", switched: true},
		{name: "h2c by default", offer: "h2c"},
		{name: "h2c beside websocket", offer: "websocket, h2c"},
		{name: "an unknown protocol", offer: "SPDY/3.1"},
		{name: "websocket when none are allowed", upgrades: []string{}, offer: "websocket"},
		{name: "a listed protocol in another case", upgrades: []string{"SPDY"}, offer: "spdy/3.1", switched: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := startProxy(t, withConfig(func(c *proxy.Config) {
				requiredPP(c)
				if tc.upgrades != nil {
					c.Upgrades = tc.upgrades
				}
			}))
			c := dialPP(t, p.addr, demoLinkID)
			br := bufio.NewReader(c)
			io.WriteString(c, "GET http://"+o.addr+"/ws HTTP/1.1\r\nHost: "+o.addr+"\r\nConnection: Upgrade\r\nUpgrade: "+tc.offer+"\r\n\r\n")
			resp, err := http.ReadResponse(br, &http.Request{Method: "GET"})
			if err != nil {
				t.Fatalf("read response: %v", err)
			}
			reqID := resp.Header.Get("X-Request-Id")
			if !tc.switched {
				body, _ := io.ReadAll(io.LimitReader(resp.Body, 64))
				if resp.StatusCode != 200 || string(body) != "plain" {
					t.Fatalf("%d %q, want the origin's plain 200: the upgrade must not reach it", resp.StatusCode, body)
				}
				e := p.waitAccess(t, tc.name, func(e map[string]any) bool { return e["request_id"] == reqID })
				if e["upgrade"] != tc.offer || e["upgrade_refused"] != true {
					t.Errorf("access log upgrade=%v upgrade_refused=%v, want %q and true", e["upgrade"], e["upgrade_refused"], tc.offer)
				}
				return
			}
			if resp.StatusCode != http.StatusSwitchingProtocols {
				t.Fatalf("status %d, want 101", resp.StatusCode)
			}
			io.WriteString(c, "frame")
			buf := make([]byte, 5)
			if _, err := io.ReadFull(br, buf); err != nil || string(buf) != "frame" {
				t.Fatalf("echo over the upgraded connection: %q, %v", buf, err)
			}
			c.Close()
			// The entry covers the tunnel after the 101: written at its
			// end, with the tenant, the host and the bytes both ways.
			e := p.waitAccess(t, tc.name, func(e map[string]any) bool { return e["request_id"] == reqID })
			if e["status"] != int64(101) || e["tenant"] != demoTenant || e["host"] != "127.0.0.1" ||
				e["upgrade"] != tc.offer || e["upgrade_refused"] != nil || e["bytes_up"].(int64) < 5 || e["bytes_down"].(int64) < 5 {
				t.Errorf("access log %v, want status 101, tenant %s, host 127.0.0.1, upgrade %q and 5+ bytes each way", e, demoTenant, tc.offer)
			}
		})
	}
}

// TestSwitchWithoutAnUpgradeIsRefused: an origin that answers 101 to a
// request whose upgrade was removed would open a pipe the policy refused.
func TestSwitchWithoutAnUpgradeIsRefused(t *testing.T) {
	t.Parallel()
	o := answeringOrigin(t, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n", false)
	p := startProxy(t)
	c := dial(t, p.addr)
	br := bufio.NewReader(c)
	io.WriteString(c, "GET http://"+o.addr+"/ HTTP/1.1\r\nHost: "+o.addr+"\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA\r\n\r\n")
	resp, _ := readResponse(t, br, "GET")
	if resp.StatusCode != http.StatusBadGateway || resp.Header.Get("X-Proxy-Error") != "upstream" {
		t.Fatalf("%d %s, want 502 upstream", resp.StatusCode, resp.Header.Get("X-Proxy-Error"))
	}
}
