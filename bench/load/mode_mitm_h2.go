//lint:file-ignore SA1019 golang.org/x/net/http2 is deprecated in favour of net/http's own HTTP/2 since Go 1.26; issue 17 asks for x/net's framing on both inspected legs, and moving to http.Server/http.ClientConn is a separate change.

package load

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"

	"golang.org/x/net/http2"
)

// Result names of the mitm-h2 mode.
const (
	ResultMITMH2        = ModeMITMH2
	ResultMITMKeepAlive = "mitm-h1-keepalive"
)

// mitmH2 measures inspected HTTP/2 (issue 17) beside inspected HTTP/1.1,
// in two results of one run against one proxy, with the same GET of
// /small and the same number of requests in flight (Concurrency, 16 in
// compare.sh):
//
//   - mitm-h2: one inspected tunnel, the client offering h2 and
//     http/1.1; when the proxy answers h2, Concurrency streams share that
//     one tunnel. A proxy that answers http/1.1 (Squid's ssl_bump has no
//     HTTP/2) gets what a real h2 client then does, Concurrency keep-alive
//     tunnels, and the result says so in its note.
//   - mitm-h1-keepalive: Concurrency inspected keep-alive tunnels over
//     HTTP/1.1, the baseline the h2 figure is divided by.
//
// The primary figure is requests per proxy CPU-second, as for every mode.
func (r *runner) mitmH2(ctx context.Context) ([]Result, error) {
	if r.cfg.MITMRoots == nil || r.cfg.Relay {
		return nil, ErrMITMNotAvailable
	}
	rq := request{tls: true, host: r.origin.Addr, path: PathSmall, size: SmallSize, roots: r.cfg.MITMRoots}
	h2 := r.measureH2(ctx, rq)
	h1 := r.measure(ctx, ResultMITMKeepAlive, r.cfg.Concurrency, r.cfg.Requests, r.cfg.Duration, r.requestOp(rq))
	return []Result{h2, h1}, nil
}

// measureH2 opens the one tunnel and runs the streams on it, or falls back
// to keep-alive HTTP/1.1 tunnels when the proxy does not negotiate h2.
func (r *runner) measureH2(ctx context.Context, rq request) Result {
	tc, err := r.h2Tunnel(ctx, rq)
	if err != nil {
		return Result{Mode: ResultMITMH2, Target: r.cfg.Target, Errors: 1, ErrorSamples: []string{err.Error()},
			Note: "the inspected tunnel could not be opened: figures withheld"}
	}
	if proto := tc.ConnectionState().NegotiatedProtocol; proto != http2.NextProtoTLS {
		_ = tc.Close()
		res := r.measure(ctx, ResultMITMH2, r.cfg.Concurrency, r.cfg.Requests, r.cfg.Duration, r.requestOp(rq))
		res.Note = joinNote(res.Note, fmt.Sprintf("the proxy negotiated %q, not h2: %d keep-alive HTTP/1.1 tunnels instead of %d streams on one", proto, r.cfg.Concurrency, r.cfg.Concurrency))
		return res
	}
	tr := &http2.Transport{DisableCompression: true, StrictMaxConcurrentStreams: true}
	cc, err := tr.NewClientConn(tc)
	if err != nil {
		_ = tc.Close()
		return Result{Mode: ResultMITMH2, Target: r.cfg.Target, Errors: 1, ErrorSamples: []string{"h2 client: " + err.Error()}}
	}
	defer cc.Close()
	want := ExpectedChecksum(rq.size)
	streams := func() (op, func()) {
		buf := make([]byte, 4096)
		return func(ctx context.Context) (int64, error) {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+rq.host+rq.path, nil)
			if err != nil {
				return 0, fmt.Errorf("build request: %w", err)
			}
			resp, err := cc.RoundTrip(req)
			if err != nil {
				return 0, fmt.Errorf("GET %s over h2: %w", rq.path, err)
			}
			defer resp.Body.Close()
			return verifyBody(resp, rq.size, want, buf)
		}, func() {}
	}
	return r.measure(ctx, ResultMITMH2, r.cfg.Concurrency, r.cfg.Requests, r.cfg.Duration, streams)
}

// h2Tunnel opens one CONNECT tunnel (with the PROXY header) and runs the
// TLS handshake inside it, offering h2 first, trusting only the proxy's CA.
func (r *runner) h2Tunnel(ctx context.Context, rq request) (*tls.Conn, error) {
	c, err := r.hw.openTunnel(ctx, rq.host, false)
	if err != nil {
		return nil, err
	}
	host, _, err := net.SplitHostPort(rq.host)
	if err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("origin address: %w", err)
	}
	tc := tls.Client(c, &tls.Config{ServerName: host, RootCAs: rq.roots, MinVersion: tls.VersionTLS12,
		NextProtos: []string{http2.NextProtoTLS, "http/1.1"}})
	hctx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	if err := tc.HandshakeContext(hctx); err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("TLS inside the tunnel: %w", err)
	}
	return tc, nil
}

func joinNote(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}
