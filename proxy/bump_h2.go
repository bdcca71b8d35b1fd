//lint:file-ignore SA1019 golang.org/x/net/http2 is deprecated in favour of net/http's own HTTP/2 since Go 1.26; issue 17 asks for x/net's framing on both inspected legs, and moving to http.Server/http.ClientConn is a separate change.

package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"golang.org/x/net/http2"

	"github.com/egressd/egressd/acl"
	"github.com/egressd/egressd/metrics"
	"github.com/egressd/egressd/tlsinspect"
)

// h2Tunnel serves HTTP/2 inside an inspected tunnel (issue 17). The client
// leg is golang.org/x/net/http2's server, the upstream leg its client
// connection over the tunnel's own verified TLS connection, so no framing
// is written here. Every stream is one request for policy: it is decided,
// limited, logged and counted on its own, with the tunnel's tenant, exactly
// like an origin-form request inside an HTTP/1.1 bump.
type h2Tunnel struct {
	s  *Server
	id acl.Identity
	bs *bumpState
	tr *http2.Transport

	mu    sync.Mutex
	cur   *http2.ClientConn   // where new streams go
	conns []*http2.ClientConn // every upstream connection, closed at the end

	up, down atomic.Int64
}

// h2 keepalive on both legs: a dead peer behind a NAT is found within
// about a minute instead of holding streams until the idle timeout.
const (
	h2ReadIdleTimeout = 30 * time.Second
	h2PingTimeout     = 15 * time.Second
)

// serveH2 runs the HTTP/2 client leg until the client goes away, the
// connection idles out, or the server drains past its deadline.
// upstream is the verified TLS connection that negotiated h2.
func (c *clientConn) serveH2(bs *bumpState, client, upstream *tls.Conn) (up, down int64) {
	s := c.s
	h := &h2Tunnel{s: s, id: c.id, bs: bs, tr: &http2.Transport{
		// The client's Accept-Encoding goes upstream as it is; the
		// transport must not add gzip and decode behind the client's back.
		DisableCompression: true,
		MaxHeaderListSize:  uint32(s.cfg.MaxHeaderBytes),
		ReadIdleTimeout:    h2ReadIdleTimeout,
		PingTimeout:        h2PingTimeout,
	}}
	defer h.closeAll()
	cc, err := h.tr.NewClientConn(upstream)
	if err != nil {
		upstream.Close()
		s.log.Info("HTTP/2 upstream connection failed", zap.String(fieldTenant, bs.tenant), zap.String(fieldHost, bs.host), zap.Error(err))
		return 0, 0
	}
	h.cur, h.conns = cc, append(h.conns, cc)

	// The tunnel is registered for drain as a tunnel: it is cut at the
	// drain deadline, not closed as idle under a client's open streams.
	inner := &clientConn{s: s, raw: client, id: c.id}
	inner.state.Store(stateTunnel)
	s.track(inner, true)
	defer s.track(inner, false)

	srv := &http2.Server{
		MaxConcurrentStreams: s.cfg.H2MaxConcurrentStreams,
		IdleTimeout:          s.cfg.H2IdleTimeout,
		ReadIdleTimeout:      h2ReadIdleTimeout,
		PingTimeout:          h2PingTimeout,
		CountError: func(errType string) {
			s.log.Debug("HTTP/2 protocol error from client", zap.String(fieldTenant, bs.tenant), zap.String("h2_error", errType))
		},
	}
	srv.ServeConn(client, &http2.ServeConnOpts{
		Context: context.Background(),
		// MaxHeaderBytes is also the advertised SETTINGS_MAX_HEADER_LIST_SIZE;
		// a header block above it, CONTINUATION frames included, is refused
		// without being buffered whole.
		BaseConfig: &http.Server{MaxHeaderBytes: s.cfg.MaxHeaderBytes, ErrorLog: log.New(io.Discard, "", 0)},
		Handler:    h,
	})
	return h.up.Load(), h.down.Load()
}

func (h *h2Tunnel) closeAll() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, cc := range h.conns {
		cc.Close()
	}
	h.conns, h.cur = nil, nil
}

// ServeHTTP serves one stream.
func (h *h2Tunnel) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s, bs := h.s, h.bs
	e := entry{start: time.Now(), reqID: s.newRequestID(), id: h.id, kind: kindBumped, method: r.Method,
		target: acl.Target{Scheme: "https", Host: bs.host, Port: bs.port}, upstream: bs.addr}
	e.dec.Tenant = bs.tenant
	up := &countingBody{rc: r.Body}
	defer func() {
		e.up = up.n.Load()
		h.up.Add(e.up)
		h.down.Add(e.down)
		s.finish(&e)
	}()

	t, out, err := h.canonical(r)
	if err != nil {
		status, o := statusFor(err)
		h.refuse(w, r, &e, status, o, o.say())
		return
	}
	e.target, e.method, e.url = t, t.Method, "https://"+out.Host+out.URL.RequestURI()

	pol := s.currentPolicy()
	e.dec = pol.Decide(h.id, bs.creds, t)
	e.user = e.dec.User // only a user whose password verified
	if e.dec.Action != acl.Allow {
		o := outcomeACL
		if e.dec.Action == acl.AuthRequired {
			o = outcomeAuth // credentials are given on the CONNECT, never inside
		}
		h.refuse(w, r, &e, http.StatusForbidden, o, denyDetail(e.dec, t), "X-Proxy-Deny-Reason", e.dec.Reason.String())
		return
	}
	if !s.limits.allow(e.dec.Tenant, pol.Limits(e.dec.Tenant)) {
		s.metrics.LimitRejected(metrics.ScopeTenant, e.dec.Tenant)
		h.refuse(w, r, &e, http.StatusTooManyRequests, outcomeLimit, "tenant "+e.dec.Tenant+" is over its request budget", "Retry-After", "1")
		return
	}

	if r.ContentLength != 0 {
		out.Body, out.ContentLength = up, r.ContentLength
	}
	cc, err := h.clientConn(&e, pol)
	if err == nil {
		var resp *http.Response
		resp, err = cc.RoundTrip(out.WithContext(r.Context()))
		if err == nil {
			h.relay(w, resp, &e)
			return
		}
	}
	if r.Context().Err() != nil {
		e.outcome = outcomeClientGone
		return
	}
	status, o := statusFor(err)
	s.log.Info("HTTP/2 upstream request failed", zap.String(fieldRequestID, e.reqID), zap.String(fieldTenant, bs.tenant),
		zap.String(fieldHost, bs.host), zap.Error(err))
	h.refuse(w, r, &e, status, o, o.say())
}

// canonical builds the policy target and the upstream request of one
// stream from the same values, so the :method, :path and :authority that go
// upstream are exactly what was decided: host and port are the tunnel's
// (a stream naming another authority is misdirected, RFC 9110 §15.5.20),
// the method is upper-cased and the path normalised by the same functions
// as an HTTP/1.1 request's, from the :path the client sent.
func (h *h2Tunnel) canonical(r *http.Request) (acl.Target, *http.Request, error) {
	bs := h.bs
	if r.Method == http.MethodConnect {
		return acl.Target{}, nil, errBadTarget // no tunnels (RFC 8441) inside a bump
	}
	if a, err := parseAuthority([]byte(r.Host), 443); err != nil || a.Host != bs.host || a.Port != bs.port {
		return acl.Target{}, nil, errMisdirected
	}
	raw, _, _ := strings.Cut(r.RequestURI, "#")
	p, q, _ := strings.Cut(raw, "?")
	norm, err := normalizePath(nil, []byte(p))
	if err != nil {
		return acl.Target{}, nil, err
	}
	t := acl.Target{Scheme: "https", Host: bs.host, Port: bs.port, Method: internMethod([]byte(r.Method)), Path: string(norm)}
	if a, err := netip.ParseAddr(bs.host); err == nil {
		t.Addr = a
	}
	// Opaque is sent as the :path verbatim; Path and RawPath would be
	// re-escaped by net/url into a spelling the policy never saw.
	authority := string(appendAuthority(nil, t))
	u := &url.URL{Scheme: "https", Host: authority, Opaque: t.Path, RawQuery: q}
	hdr := r.Header.Clone()
	for _, k := range []string{"Proxy-Authorization", "Proxy-Connection", "Connection", "Keep-Alive", "Upgrade", "Transfer-Encoding", "Host"} {
		delete(hdr, k)
	}
	hdr.Add("Via", "2 "+h.s.cfg.Via)
	out := &http.Request{Method: t.Method, URL: u, Host: authority, Header: hdr, Trailer: r.Trailer,
		Proto: "HTTP/2.0", ProtoMajor: 2}
	return t, out, nil
}

// clientConn returns an upstream HTTP/2 connection that can take a new
// stream, dialing the tunnel's checked target again (and verifying again)
// when the current one is full or gone.
func (h *h2Tunnel) clientConn(e *entry, pol Policy) (*http2.ClientConn, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.cur != nil && h.cur.CanTakeNewRequest() {
		return h.cur, nil
	}
	s, bs := h.s, h.bs
	conn, ap, err := s.dialDirectOrParent(pol, e, dialCheck(pol, e))
	if err != nil {
		return nil, err
	}
	e.upstream = ap
	tc, err := s.upstreamTLS(bs.insp, conn, bs.host, tlsinspect.ALPNH2)
	if err == nil && tc.ConnectionState().NegotiatedProtocol != tlsinspect.ALPNH2 {
		tc.Close()
		err = errors.New("upstream no longer negotiates h2")
	}
	if err != nil {
		conn.Close()
		return nil, &DialError{Step: DialStepTLS, Host: bs.host, Err: err}
	}
	cc, err := h.tr.NewClientConn(tc)
	if err != nil {
		tc.Close()
		return nil, &DialError{Step: DialStepTLS, Host: bs.host, Err: err}
	}
	h.cur, h.conns = cc, append(h.conns, cc)
	return cc, nil
}

// relay streams the response back: headers, each body read flushed at
// once (gRPC streams in both directions), then the trailers.
func (h *h2Tunnel) relay(w http.ResponseWriter, resp *http.Response, e *entry) {
	defer resp.Body.Close()
	wh := w.Header()
	for k, vv := range resp.Header {
		wh[k] = vv
	}
	e.status = resp.StatusCode
	w.WriteHeader(resp.StatusCode)
	rc := http.NewResponseController(w)
	if resp.Header.Get("Grpc-Status") == "" {
		// Headers go out at once (a stream may wait on them), except a
		// gRPC trailers-only response, which must stay one HEADERS frame
		// with END_STREAM or the client reads it as headers without
		// trailers.
		rc.Flush()
	}
	bp := copyBufPool.Get().(*[]byte)
	defer copyBufPool.Put(bp)
	for {
		n, err := resp.Body.Read(*bp)
		if n > 0 {
			if _, werr := w.Write((*bp)[:n]); werr != nil {
				e.outcome = outcomeClientGone
				return
			}
			e.down += int64(n)
			rc.Flush()
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			// The client's stream is reset rather than ended cleanly, so a
			// truncated body is never mistaken for a whole one.
			e.outcome = outcomeUpstreamBody
			panic(http.ErrAbortHandler)
		}
	}
	// Trailers (grpc-status, grpc-message) are known only now.
	for k, vv := range resp.Trailer {
		wh[http.TrailerPrefix+k] = vv
	}
}

// refuse answers a stream egressd will not forward. A gRPC client gets
// the refusal in its own terms (a trailers-only response with grpc-status,
// per the gRPC HTTP/2 protocol spec), so the call fails with a clear code
// instead of "unexpected HTTP status"; the access line keeps the HTTP
// status any other client would get.
func (h *h2Tunnel) refuse(w http.ResponseWriter, r *http.Request, e *entry, status int, o outcome, detail string, extra ...string) {
	e.status, e.outcome = status, o
	wh := w.Header()
	wh.Set("X-Request-Id", e.reqID)
	wh.Set("X-Proxy-Error", o.String())
	for i := 0; i+1 < len(extra); i += 2 {
		wh.Set(extra[i], extra[i+1])
	}
	msg := "egressd: " + http.StatusText(status) + ": " + detail + " (request_id=" + e.reqID + ")"
	if strings.HasPrefix(r.Header.Get("Content-Type"), "application/grpc") {
		wh.Set("Content-Type", "application/grpc")
		wh.Set("Grpc-Status", strconv.Itoa(grpcCodeFor(status)))
		wh.Set("Grpc-Message", url.PathEscape(msg))
		w.WriteHeader(http.StatusOK)
		return
	}
	wh.Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(status)
	io.WriteString(w, msg+"\n")
}

// grpcCodeFor maps a refusal to the gRPC status code a client should act
// on (grpc/grpc doc/statuscodes.md).
func grpcCodeFor(status int) int {
	switch status {
	case http.StatusForbidden:
		return 7 // PERMISSION_DENIED
	case http.StatusTooManyRequests:
		return 8 // RESOURCE_EXHAUSTED
	case http.StatusBadRequest, http.StatusMisdirectedRequest:
		return 3 // INVALID_ARGUMENT
	case http.StatusGatewayTimeout:
		return 4 // DEADLINE_EXCEEDED
	default:
		return 14 // UNAVAILABLE
	}
}

// countingBody counts request body bytes as the upstream transport reads
// them, on its own goroutine.
type countingBody struct {
	rc io.ReadCloser
	n  atomic.Int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	b.n.Add(int64(n))
	return n, err
}

func (b *countingBody) Close() error { return b.rc.Close() }
