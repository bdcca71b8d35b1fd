package load

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/pires/go-proxyproto"
)

// Azure's TLV carrying the private endpoint LinkID (PLS documentation;
// go-proxyproto's tlvparse/azure.go reads the same layout).
const (
	tlvAzure       = proxyproto.PP2Type(0xEE)
	tlvAzureLinkID = 0x01
)

// dialTimeout bounds connection set-up to the proxy under test.
const dialTimeout = 10 * time.Second

// headerWriter dials the proxy under test and starts every new connection
// with the configured PROXY header, as the PLS does.
type headerWriter struct {
	proxyAddr string
	version   byte // 0 = no header, 1 or 2
	linkID    uint32
	dialer    net.Dialer
}

// dial ignores the requested address: every connection goes to the proxy
// (or relay) under test.
func (h *headerWriter) dial(ctx context.Context, _, _ string) (net.Conn, error) {
	c, err := h.dialer.DialContext(ctx, "tcp", h.proxyAddr)
	if err != nil {
		return nil, fmt.Errorf("dial proxy %s: %w", h.proxyAddr, err)
	}
	if err := h.writeHeader(c); err != nil {
		_ = c.Close()
		return nil, err
	}
	return c, nil
}

func (h *headerWriter) writeHeader(c net.Conn) error {
	if h.version == 0 {
		return nil
	}
	hdr := proxyproto.HeaderProxyFromAddrs(h.version, c.LocalAddr(), c.RemoteAddr())
	if h.version == 2 {
		v := make([]byte, 5)
		v[0] = tlvAzureLinkID
		binary.LittleEndian.PutUint32(v[1:], h.linkID)
		if err := hdr.SetTLVs([]proxyproto.TLV{{Type: tlvAzure, Value: v}}); err != nil {
			return fmt.Errorf("proxy header TLV: %w", err)
		}
	}
	if _, err := hdr.WriteTo(c); err != nil {
		return fmt.Errorf("write proxy header: %w", err)
	}
	return nil
}

// openTunnel dials the proxy and, unless the target is a relay, asks it to
// CONNECT to target. On return the connection carries bytes to the origin.
func (h *headerWriter) openTunnel(ctx context.Context, target string, relay bool) (net.Conn, error) {
	c, err := h.dial(ctx, "tcp", target)
	if err != nil {
		return nil, err
	}
	if relay {
		return c, nil
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	} else {
		_ = c.SetDeadline(time.Now().Add(dialTimeout))
	}
	if _, err := fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", target, target); err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("write CONNECT: %w", err)
	}
	br := bufio.NewReaderSize(c, 1024)
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
	if err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("read CONNECT response: %w", err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_ = c.Close()
		return nil, fmt.Errorf("CONNECT %s: status %d", target, resp.StatusCode)
	}
	// The origin speaks only after the client does, so nothing may follow
	// the 200; anything buffered would be lost with the bufio.Reader.
	if br.Buffered() > 0 {
		_ = c.Close()
		return nil, fmt.Errorf("CONNECT %s: %d unexpected bytes after 200", target, br.Buffered())
	}
	_ = c.SetDeadline(time.Time{})
	return c, nil
}
