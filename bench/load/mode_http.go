package load

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"hash/crc32"
	"io"
	"net/http"
	"net/url"
	"time"
)

// request describes the GET a worker repeats.
type request struct {
	tls   bool   // https through a CONNECT tunnel (or straight through a relay)
	fresh bool   // a new connection (and tunnel) per operation
	host  string // origin host:port as written in the URL
	path  string
	size  int64 // expected body length
	roots *x509.CertPool
}

// httpOp is the operation of the four HTTP-shaped modes: a GET of path,
// either absolute-form through the proxy or inside a CONNECT tunnel.
func (r *runner) httpOp(tunnel bool, path string, size int64) newOp {
	return r.requestOp(request{
		tls:   tunnel,
		fresh: tunnel && path == PathSmall, // connect-rate: one tunnel per GET
		host:  r.origin.Addr,
		path:  path,
		size:  size,
		roots: r.origin.Roots,
	})
}

func (r *runner) requestOp(rq request) newOp {
	want := ExpectedChecksum(rq.size)
	return func() (op, func()) {
		tr := r.transport(rq)
		buf := make([]byte, 64<<10)
		do := func(ctx context.Context) (int64, error) {
			return getAndVerify(ctx, tr, rq, want, buf)
		}
		return do, tr.CloseIdleConnections
	}
}

// transport is one worker's client: its connections all go to the proxy
// under test and each starts with the PROXY header. One transport per worker
// keeps exactly Concurrency connections open in the keep-alive modes.
func (r *runner) transport(rq request) *http.Transport {
	tr := &http.Transport{
		DialContext:           r.hw.dial,
		DisableKeepAlives:     rq.fresh,
		DisableCompression:    true,
		MaxIdleConnsPerHost:   1,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   dialTimeout,
		ResponseHeaderTimeout: 30 * time.Second,
		// HTTP/1.1 inside tunnels, as through Squid; no session cache, so
		// every new tunnel pays a full handshake as a new pod would.
		TLSClientConfig: &tls.Config{RootCAs: rq.roots, NextProtos: []string{"http/1.1"}, MinVersion: tls.VersionTLS12},
		TLSNextProto:    map[string]func(string, *tls.Conn) http.RoundTripper{},
	}
	// Through a relay, TLS runs straight to the origin (no CONNECT); plain
	// HTTP still goes absolute-form, which the origin accepts.
	if !(r.cfg.Relay && rq.tls) {
		tr.Proxy = http.ProxyURL(&url.URL{Scheme: "http", Host: r.cfg.Proxy})
	}
	return tr
}

func getAndVerify(ctx context.Context, tr *http.Transport, rq request, want uint32, buf []byte) (int64, error) {
	scheme := "http"
	if rq.tls {
		scheme = "https"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, scheme+"://"+rq.host+rq.path, nil)
	if err != nil {
		return 0, fmt.Errorf("build request: %w", err)
	}
	resp, err := tr.RoundTrip(req)
	if err != nil {
		return 0, fmt.Errorf("GET %s: %w", rq.path, err)
	}
	defer resp.Body.Close()
	return verifyBody(resp, rq.size, want, buf)
}

// verifyBody checks status, declared and actual length, and checksum. The
// body is always read to the end so that a keep-alive connection is reused.
func verifyBody(resp *http.Response, size int64, want uint32, buf []byte) (int64, error) {
	h := crc32.New(castagnoli)
	n, err := io.CopyBuffer(h, resp.Body, buf)
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("status %d", resp.StatusCode)
	}
	if err != nil {
		return 0, fmt.Errorf("read body after %d bytes: %w", n, err)
	}
	if resp.ContentLength != -1 && resp.ContentLength != size {
		return 0, fmt.Errorf("content-length %d, want %d", resp.ContentLength, size)
	}
	if n != size {
		return 0, fmt.Errorf("body length %d, want %d", n, size)
	}
	if got := h.Sum32(); got != want {
		return 0, fmt.Errorf("body checksum %08x, want %08x", got, want)
	}
	return n, nil
}
