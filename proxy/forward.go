package proxy

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/egressd/egressd/acl"
)

// expectContinueWait is how long we wait for an origin's 100 Continue
// before sending the body anyway, as net/http's Transport does: some
// origins ignore Expect, and the client is waiting on us.
const expectContinueWait = time.Second

// forward serves one absolute-form request through a pooled upstream
// connection. It reports whether the client connection may be reused.
func (c *clientConn) forward(e *entry) bool {
	s, r := c.s, &c.req
	hasBody := r.chunked || r.contentLength > 0
	keep := !r.wantsClose
	key := poolKey{tenant: e.dec.Tenant, tls: r.target.Scheme == "https", host: r.target.Host, port: r.target.Port}
	check := dialCheck(c.pol, e)
	if r.upgrade != nil {
		e.upgrade = string(r.upgrade)
		if !upgradeAllowed(s.cfg.Upgrades, r.upgrade) {
			// Removed, not refused: a server may ignore Upgrade (RFC 9110
			// §7.8), so the request itself is still served.
			e.upgradeRefused, r.upgrade = true, nil
		}
	}
	if r.chunked {
		// A body already known to be invalid never reaches the upstream.
		if err := checkBufferedChunks(c.br); err != nil {
			c.failRequest(e, err, false)
			return false
		}
	}

	var up *upConn
	var err error
	for attempt := 0; ; attempt++ {
		var reused bool
		up, reused, err = c.takeUpstream(e, key, check)
		if err != nil {
			c.failRequest(e, err, keep && !hasBody)
			return keep && !hasBody
		}
		e.upstream = up.addr
		err = c.sendRequest(up, e)
		// A reused connection the origin closed just now fails before any
		// response byte. Send again only what may be replayed (the set
		// net/http's Transport uses): the origin may have seen the first.
		if err != nil && reused && !hasBody && attempt == 0 && errors.Is(err, errStaleConn) && replayable(r) {
			up.conn.Close()
			continue
		}
		break
	}
	if err != nil {
		up.conn.Close()
		var re *relayError
		switch {
		case errors.Is(err, errClientAborted):
			e.outcome = outcomeClientAborted // nobody left to answer
		case e.status != 0:
			// The status line is out; a close is the only signal left. Say
			// whose side broke, so a client leaving is not an upstream error.
			if errors.As(err, &re) && !re.srcSide {
				e.outcome = outcomeClientGone
			} else {
				e.outcome = outcomeUpstreamBody
			}
		default:
			c.failRequest(e, err, false)
		}
		return false
	}
	if c.upgraded {
		c.upgraded = false
		return false
	}
	return keep && !c.closeAfter && !s.draining.Load()
}

var (
	errStaleConn     = errors.New("proxy: upstream closed an idle connection")
	errClientAborted = errors.New("proxy: client aborted the request body")
)

func replayable(r *request) bool {
	switch r.method {
	case "GET", "HEAD", "OPTIONS", "TRACE":
		return true
	}
	_, ok := r.h.get("Idempotency-Key")
	return ok
}

func (s *Server) dialUpstream(key poolKey, t acl.Target, check func(netip.Addr) acl.Decision) (*upConn, error) {
	conn, ap, err := s.dialer.dialTarget(context.Background(), t, check)
	if err != nil {
		return nil, err
	}
	if key.tls {
		tc := tls.Client(conn, s.upTLS(t.Host))
		ctx, cancel := context.WithTimeout(context.Background(), s.cfg.DialTimeout)
		err := tc.HandshakeContext(ctx)
		cancel()
		if err != nil {
			conn.Close()
			return nil, &DialError{Step: DialStepTLS, Host: t.Host, Err: err}
		}
		conn = tc
	}
	return newUpConn(conn, ap, key), nil
}

// failRequest answers a request that never got an upstream response.
func (c *clientConn) failRequest(e *entry, err error, keep bool) {
	status, o := statusFor(err)
	e.status, e.outcome = status, o
	reason := o.String()
	var de *DialError
	if errors.As(err, &de) && de.Step == DialStepSSRF {
		tenant := e.dec.Tenant
		e.dec = de.Decision
		if e.dec.Tenant == "" {
			e.dec.Tenant = tenant
		}
		e.headDown = int64(writeStatus(c.bw, status, reason, denyDetail(e.dec, e.target), e.reqID, !keep, "X-Proxy-Deny-Reason", "ssrf"))
		return
	}
	// The error names resolvers, resolved addresses and dial failures:
	// the event log keeps it, the client gets the outcome's fixed sentence.
	c.s.log.Info("request failed", zap.String(fieldRequestID, e.reqID), zap.String(fieldTenant, e.dec.Tenant),
		zap.String(fieldHost, e.target.Host), zap.String(fieldError, reason), zap.NamedError("detail", err))
	e.headDown = int64(writeStatus(c.bw, status, reason, o.say(), e.reqID, !keep))
}

// sendRequest writes the request to up, relays the response, and parks up
// in the pool when both messages ended cleanly.
func (c *clientConn) sendRequest(up *upConn, e *entry) error {
	s, r := c.s, &c.req
	hasBody := r.chunked || r.contentLength > 0
	if usesConnAuth(&r.h, "Authorization") {
		up.connAuth = true
	}
	if up.absolute {
		writeParentRequestHead(up.bw, r, s.cfg.Via, up.parent)
	} else {
		writeRequestHead(up.bw, r, s.cfg.Via)
	}
	if err := up.bw.Flush(); err != nil {
		return errStaleConn
	}
	reqBody := bodyCopy{src: c.br, srcConn: c.raw, dst: up.bw, dstConn: up.conn, idle: s.cfg.ClientIdleTimeout, connTokens: r.connTokens}
	f, n := bodyNone, int64(0)
	switch {
	case r.chunked:
		f = bodyChunked
	case r.contentLength > 0:
		f, n = bodyLength, r.contentLength
	}
	rh := &c.resp
	if hasBody && r.expect100 {
		// Give the origin a moment to answer the expectation first.
		up.conn.SetReadDeadline(time.Now().Add(expectContinueWait))
		if _, err := up.br.Peek(1); err == nil {
			status, err := c.readResponseHead(up, rh)
			if err != nil {
				return err
			}
			if status != 100 {
				// A final answer without reading the body: relay it, then
				// close, because the unread body is still on the wire.
				c.closeAfter = true
				up.conn.SetDeadline(time.Time{})
				return c.relayResponse(up, e, status, false)
			}
			c.bw.WriteString("HTTP/1.1 100 Continue\r\n\r\n")
			c.bw.Flush()
		} else if !isTimeout(err) {
			return errStaleConn
		}
	}
	if hasBody {
		sent, err := reqBody.copy(f, n, r.chunked)
		e.up += sent
		if err != nil {
			c.closeAfter = true
			if re := (*relayError)(nil); errors.As(err, &re) && re.srcSide {
				if errors.Is(err, errBadChunk) {
					return err // answered 400; the upstream is closed mid-body
				}
				if errors.Is(err, errChunkTrailer) {
					// The client is still there and sent a bad trailer
					// line: it gets a 400, not silence.
					return fmt.Errorf("%w: %w", errMalformed, err)
				}
				return errClientAborted
			}
			return err
		}
	}
	status, err := c.readResponseHead(up, rh)
	for err == nil && status >= 100 && status < 200 && status != 101 {
		// Interim responses (100, 103) go to HTTP/1.1 clients as they come.
		if r.minor == 1 && status != 100 {
			c.bw.Write(rh.bytes(rh.line))
			c.bw.WriteString("\r\n")
			writeFields(c.bw, rh, nil)
			c.bw.WriteString("\r\n")
			c.bw.Flush()
		}
		status, err = c.readResponseHead(up, rh)
	}
	if err != nil {
		return err
	}
	if status == 407 && up.absolute {
		return parentAuthError(up)
	}
	return c.relayResponse(up, e, status, true)
}

// readResponseHead reads and checks a status line within the response
// header timeout.
func (c *clientConn) readResponseHead(up *upConn, rh *head) (int, error) {
	up.conn.SetReadDeadline(time.Now().Add(c.s.cfg.ResponseHeaderTimeout))
	if err := readHead(up.br, rh, c.s.cfg.MaxHeaderBytes); err != nil {
		switch {
		case isTimeout(err):
			return 0, errUpstreamTimeout
		case (errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET)) && len(rh.buf) == 0:
			return 0, errStaleConn
		}
		return 0, errUpstreamProtocol
	}
	line := rh.bytes(rh.line)
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) || line[8] != ' ' {
		return 0, errUpstreamProtocol
	}
	status, err := strconv.Atoi(string(line[9:12]))
	if err != nil || status < 100 || status > 999 || len(line) > 12 && line[12] != ' ' {
		return 0, errUpstreamProtocol
	}
	return status, nil
}

// relayResponse sends the response head in rh and its body to the client.
// reusable says whether up may go back to the pool afterwards.
func (c *clientConn) relayResponse(up *upConn, e *entry, status int, reusable bool) error {
	r, rh := &c.req, &c.resp
	upClose := bytes.HasPrefix(rh.bytes(rh.line), []byte("HTTP/1.0"))
	var upTokens [][]byte
	f, n, chunkedAndLength, err := responseFraming(r.method, status, rh)
	if err != nil {
		return err
	}
	for i := range rh.fields {
		if asciiEqualFold(rh.name(i), "Connection") {
			forEachToken(rh.value(i), func(tok []byte) {
				switch {
				case asciiEqualFold(tok, "close"):
					upClose = true
				case asciiEqualFold(tok, "keep-alive"):
					upClose = upClose && !bytes.HasPrefix(rh.bytes(rh.line), []byte("HTTP/1.0"))
				}
				upTokens = append(upTokens, tok)
			})
		}
	}
	if usesConnAuth(rh, "WWW-Authenticate") {
		up.connAuth = true // the handshake that follows must stay on this connection
	}
	if status == 101 && r.upgrade == nil {
		return errUpstreamProtocol
	}
	// Only now does the client get this status; an error above leaves
	// e.status unset so the caller answers 502 instead.
	e.status = status
	if status == 101 {
		return c.switchProtocols(up, e, upTokens)
	}
	bw := c.bw
	// hw counts the head's bytes for the Squid line, which (like Squid's)
	// counts what the client received, head included.
	hw := headWriter{bw: bw}
	hw.str("HTTP/1.1")
	hw.bytes(rh.bytes(rh.line)[8:])
	hw.str("\r\n")
	keepLength := f == bodyNone // HEAD and 304 keep the origin's Content-Length
	hw.n += writeFields(bw, rh, upTokens, keepLength)
	hw.n += writeRequestID(bw, e.reqID)
	hw.str("Via: 1.1 ")
	hw.str(c.s.cfg.Via)
	hw.str("\r\n")
	outChunked := false
	switch f {
	case bodyLength:
		hw.str("Content-Length: ")
		hw.str(strconv.FormatInt(n, 10))
		hw.str("\r\n")
	case bodyChunked, bodyClose:
		if r.minor == 1 {
			hw.str("Transfer-Encoding: chunked\r\n")
			outChunked = true
			if f == bodyChunked {
				hw.n += writeTrailerAnnouncement(bw, rh)
			}
		} else {
			c.closeAfter = true // HTTP/1.0: the close delimits the body
		}
	}
	if c.closeAfter || r.wantsClose || c.s.draining.Load() {
		hw.str("Connection: close\r\n")
	} else if r.minor == 0 {
		hw.str("Connection: keep-alive\r\n")
	}
	hw.str("\r\n")
	e.headDown += int64(hw.n)
	if c.s.squidLog {
		if v, ok := rh.get("Content-Type"); ok {
			e.mime = mediaType(v)
		}
	}
	respBody := bodyCopy{src: up.br, srcConn: up.conn, dst: bw, dstConn: c.raw, idle: c.s.cfg.UpstreamIdleTimeout, connTokens: upTokens}
	got, err := respBody.copy(f, n, outChunked)
	e.down += got
	if err == nil {
		err = bw.Flush()
	}
	if err != nil {
		c.closeAfter = true
		return err
	}
	if reusable && !upClose && f != bodyClose && !chunkedAndLength {
		c.ups.put(up)
	} else {
		up.conn.Close()
	}
	return nil
}

// responseFraming applies RFC 9112 §6.3 to a response. chunkedAndLength
// reports the smuggling-shaped case where both were sent: chunked wins and
// the upstream connection must not be reused.
func responseFraming(method string, status int, h *head) (f framing, n int64, chunkedAndLength bool, err error) {
	if method == "HEAD" || status < 200 || status == 204 || status == 304 {
		return bodyNone, 0, false, nil
	}
	var te, cl bool
	var last []byte
	n = -1
	for i := range h.fields {
		name, v := h.name(i), h.value(i)
		switch {
		case asciiEqualFold(name, "Transfer-Encoding"):
			te = true
			forEachToken(v, func(tok []byte) { last = tok })
		case asciiEqualFold(name, "Content-Length"):
			var bad bool
			forEachToken(v, func(tok []byte) {
				v, ok := parseContentLength(tok)
				if !ok || cl && v != n {
					bad = true
				}
				n, cl = v, true
			})
			if bad {
				return 0, 0, false, errUpstreamProtocol
			}
		}
	}
	switch {
	case te && asciiEqualFold(last, "chunked"):
		return bodyChunked, 0, cl, nil
	case te:
		return bodyClose, 0, cl, nil
	case cl:
		return bodyLength, n, false, nil
	}
	return bodyClose, 0, false, nil
}

// hopByHop reports fields that describe one connection, not the message
// (RFC 9110 §7.6.1), plus the framing fields we always regenerate.
func hopByHop(name []byte) bool {
	switch len(name) {
	case 2:
		return asciiEqualFold(name, "TE")
	case 4:
		return asciiEqualFold(name, "Host")
	case 7:
		return asciiEqualFold(name, "Trailer") || asciiEqualFold(name, "Upgrade")
	case 10:
		return asciiEqualFold(name, "Connection") || asciiEqualFold(name, "Keep-Alive")
	case 14:
		return asciiEqualFold(name, "Content-Length")
	case 16:
		return asciiEqualFold(name, "Proxy-Connection")
	case 17:
		return asciiEqualFold(name, "Transfer-Encoding")
	case 18:
		return asciiEqualFold(name, "Proxy-Authenticate")
	case 19:
		return asciiEqualFold(name, "Proxy-Authorization")
	}
	return false
}

// writeFields copies the end-to-end fields of h. keepLength passes
// Content-Length through for bodiless responses (HEAD, 304) where it
// describes the representation, not this message.
func writeFields(bw *bufio.Writer, h *head, connTokens [][]byte, keepLength ...bool) (n int) {
	passLength := len(keepLength) > 0 && keepLength[0]
fields:
	for i := range h.fields {
		name := h.name(i)
		if hopByHop(name) && !(passLength && asciiEqualFold(name, "Content-Length")) {
			continue
		}
		for _, t := range connTokens {
			if bytes.EqualFold(name, t) {
				continue fields
			}
		}
		bw.Write(name)
		bw.WriteString(": ")
		bw.Write(h.value(i))
		bw.WriteString("\r\n")
		n += len(name) + len(h.value(i)) + 4
	}
	return n
}

// headWriter writes a response head and counts its bytes.
type headWriter struct {
	bw *bufio.Writer
	n  int
}

func (h *headWriter) str(s string)   { h.bw.WriteString(s); h.n += len(s) }
func (h *headWriter) bytes(b []byte) { h.bw.Write(b); h.n += len(b) }

// writeRequestHead writes the origin-form request for upstream.
func writeRequestHead(bw *bufio.Writer, r *request, via string) {
	bw.WriteString(r.method)
	bw.WriteByte(' ')
	writeRequestTail(bw, r, via, "")
}

// writeRequestTail writes the request from its path on; extra is whole
// header lines added last (a parent's Proxy-Authorization).
func writeRequestTail(bw *bufio.Writer, r *request, via, extra string) {
	if len(r.path) == 0 || r.path[0] != '/' {
		bw.WriteByte('/')
	}
	bw.Write(r.path)
	bw.WriteString(" HTTP/1.1\r\nHost: ")
	var hb [80]byte
	bw.Write(appendAuthority(hb[:0], r.target))
	bw.WriteString("\r\n")
	writeFields(bw, &r.h, r.connTokens)
	if r.minor == 0 {
		bw.WriteString("Via: 1.0 ")
	} else {
		bw.WriteString("Via: 1.1 ")
	}
	bw.WriteString(via)
	bw.WriteString("\r\n")
	switch {
	case r.chunked:
		bw.WriteString("Transfer-Encoding: chunked\r\n")
		writeTrailerAnnouncement(bw, &r.h)
	case r.contentLength >= 0:
		bw.WriteString("Content-Length: ")
		bw.WriteString(strconv.FormatInt(r.contentLength, 10))
		bw.WriteString("\r\n")
	}
	if r.upgrade != nil {
		bw.WriteString("Connection: Upgrade\r\nUpgrade: ")
		bw.Write(r.upgrade)
		bw.WriteString("\r\n")
	}
	bw.WriteString(extra)
	bw.WriteString("\r\n")
}

// upgradeAllowed reports whether every protocol an Upgrade field offers
// is listed; "websocket/13" is the protocol websocket.
func upgradeAllowed(allowed []string, v []byte) bool {
	ok := true
	n := 0
	forEachToken(v, func(tok []byte) {
		n++
		name, _, _ := bytes.Cut(tok, []byte{'/'})
		if !containsFoldBytes(allowed, name) {
			ok = false
		}
	})
	return ok && n > 0
}

func containsFoldBytes(list []string, b []byte) bool {
	for _, s := range list {
		if asciiEqualFold(b, s) {
			return true
		}
	}
	return false
}

// switchProtocols relays a 101 response and turns the connection into a
// tunnel (WebSocket over plain HTTP).
func (c *clientConn) switchProtocols(up *upConn, e *entry, upTokens [][]byte) error {
	rh := &c.resp
	bw := c.bw
	bw.WriteString("HTTP/1.1")
	bw.Write(rh.bytes(rh.line)[8:])
	bw.WriteString("\r\n")
	writeFields(bw, rh, upTokens)
	writeRequestID(bw, e.reqID)
	if v, ok := rh.get("Upgrade"); ok {
		bw.WriteString("Connection: Upgrade\r\nUpgrade: ")
		bw.Write(v)
		bw.WriteString("\r\n")
	}
	bw.WriteString("\r\n")
	if err := bw.Flush(); err != nil {
		return dstErr(err)
	}
	up.conn.SetDeadline(time.Time{})
	c.raw.SetDeadline(time.Time{})
	c.upgraded = true
	c.state.Store(stateTunnel)
	pendingUp, pendingDown := bufferedBytes(c.br), bufferedBytes(up.br)
	c.release()
	u, d := c.s.runTunnel(c.raw, up.conn, pendingUp, pendingDown)
	e.up += u
	e.down += d
	return nil
}

// mediaType is a Content-Type without its parameters, lower-cased, as
// Squid logs it ("text/html", not "text/html; charset=utf-8").
func mediaType(v []byte) string {
	if i := bytes.IndexByte(v, ';'); i >= 0 {
		v = v[:i]
	}
	return strings.ToLower(string(bytes.TrimSpace(v)))
}
