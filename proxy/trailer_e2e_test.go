package proxy_test

// Request trailers (issue 17, item 3): a chunked request's trailer fields
// reach the origin, through the plain proxy, inside an HTTP/1.1 bump and
// on HTTP/2 streams inside a bump, minus the fields a trailer must not
// carry or a proxy must not forward.

import (
	"bufio"
	"io"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/egressd/egressd/acl"
)

// trailerRecorder is an origin handler that reads the whole body, records
// it and the request trailers it saw, and answers with a trailer of its own.
type trailerRecorder struct {
	mu       sync.Mutex
	body     string
	trailers http.Header
}

func (o *trailerRecorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body) // r.Trailer is filled only once the body is read
	o.mu.Lock()
	o.body, o.trailers = string(b), r.Trailer.Clone()
	o.mu.Unlock()
	w.Header().Set("Trailer", "X-Origin-Sum")
	w.WriteHeader(200)
	w.(http.Flusher).Flush() // chunked, so the trailer can follow
	io.WriteString(w, "ok")
	w.Header().Set("X-Origin-Sum", "origin-sum")
}

func (o *trailerRecorder) seen() (string, http.Header) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.body, o.trailers
}

// chunkedWithTrailers is a chunked request whose trailer section holds one
// field to forward and three that must not go on: a credential for the
// proxy, a framing field, and a field the head's Connection named.
func chunkedWithTrailers(target, host string) string {
	return "POST " + target + " HTTP/1.1\r\nHost: " + host + "\r\n" +
		"Transfer-Encoding: chunked\r\nTrailer: X-Checksum\r\nConnection: X-Hop\r\n\r\n" +
		"5\r\nhello\r\n0\r\n" +
		"X-Checksum: sha256=2cf24dba\r\n" +
		"Proxy-Authorization: Basic dTpzZWNyZXQ=\r\n" +
		"Content-Length: 99\r\n" +
		"X-Hop: 1\r\n\r\n"
}

func checkTrailerExchange(t *testing.T, o *trailerRecorder, rw io.ReadWriter, br *bufio.Reader, raw string) {
	t.Helper()
	if _, err := io.WriteString(rw, raw); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(br, &http.Request{Method: "POST"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 || string(b) != "ok" {
		t.Fatalf("response %d %q %v, want 200 ok", resp.StatusCode, b, err)
	}
	body, trailers := o.seen()
	want := http.Header{"X-Checksum": {"sha256=2cf24dba"}}
	if body != "hello" || !reflect.DeepEqual(trailers, want) {
		t.Errorf("origin saw body %q trailers %v, want %q and only %v", body, trailers, "hello", want)
	}
	if got := resp.Trailer.Get("X-Origin-Sum"); got != "origin-sum" {
		t.Errorf("client saw response trailer X-Origin-Sum %q, want origin-sum (trailers %v)", got, resp.Trailer)
	}
}

func TestChunkedRequestTrailersReachTheOrigin(t *testing.T) {
	o := &trailerRecorder{}
	base := startHTTPOrigin(t, o)
	p := startProxy(t)
	c := dial(t, p.addr)
	defer c.Close()
	c.SetDeadline(time.Now().Add(ioTimeout))
	host := strings.TrimPrefix(base, "http://")
	checkTrailerExchange(t, o, c, bufio.NewReader(c), chunkedWithTrailers(base+"/upload", host))
}

func TestChunkedRequestTrailersInsideABump(t *testing.T) {
	pki := newTrustSet(t)
	o := &trailerRecorder{}
	origin := startTLSOrigin(t, pki.leaf(t, leafSpec{names: []string{"api.origin.test"}}, nil), o)
	s := startProxy(t, withInspection(pki, acl.TLSInspectionConfig{Mode: "bump"}))
	authority := "api.origin.test:" + origin.port
	tc, err := tlsVia(s.addr, authority, "api.origin.test", pki.corpPool)
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	tc.SetDeadline(time.Now().Add(ioTimeout))
	checkTrailerExchange(t, o, tc, bufio.NewReader(tc), chunkedWithTrailers("/upload", authority))
	checkAccessFields(t, s.waitKind(t, "bumped", "api.origin.test", "/upload"), map[string]string{"status": "200", "method": "POST"})
}

func TestH2RequestTrailersInsideABump(t *testing.T) {
	pki := newTrustSet(t)
	o := &trailerRecorder{}
	origin := startH2Origin(t, pki.leaf(t, leafSpec{names: []string{"api.origin.test"}}, nil), o)
	s := startProxy(t, withInspection(pki, acl.TLSInspectionConfig{Mode: "bump"}))
	pr, pw := io.Pipe()
	req, _ := http.NewRequest("POST", "https://api.origin.test:"+origin.port+"/upload", pr)
	req.Trailer = http.Header{"X-Checksum": nil}
	go func() {
		io.WriteString(pw, "hello")
		// Set before EOF, read by the transport after it: the value is
		// known only once the body is sent, as for a real checksum.
		req.Trailer.Set("X-Checksum", "sha256=2cf24dba")
		pw.Close()
	}()
	resp, err := h2Client(t, s).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.ProtoMajor != 2 || string(b) != "ok" {
		t.Fatalf("response %s %q, want ok over HTTP/2", resp.Proto, b)
	}
	body, trailers := o.seen()
	if want := (http.Header{"X-Checksum": {"sha256=2cf24dba"}}); body != "hello" || !reflect.DeepEqual(trailers, want) {
		t.Errorf("origin saw body %q trailers %v, want %q and %v", body, trailers, "hello", want)
	}
	if got := resp.Trailer.Get("X-Origin-Sum"); got != "origin-sum" {
		t.Errorf("client saw response trailer %q, want origin-sum", got)
	}
}

// TestMalformedRequestTrailerIsNotForwarded: a trailer line the head
// parser would refuse (obs-fold, a name that is not a token, a control
// byte) is answered 400 and the upstream connection is dropped, so the
// origin never gets a complete message with it; the proxy keeps serving.
func TestMalformedRequestTrailerIsNotForwarded(t *testing.T) {
	o := &trailerRecorder{}
	base := startHTTPOrigin(t, o)
	p := startProxy(t)
	host := strings.TrimPrefix(base, "http://")
	for _, tc := range []struct{ name, trailer string }{
		{name: "obs-fold", trailer: "X-Checksum: a\r\n folded: b\r\n"},
		{name: "name not a token", trailer: "X Checksum: a\r\n"},
		{name: "control byte", trailer: "X-Checksum: a\x01b\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := dial(t, p.addr)
			defer c.Close()
			c.SetDeadline(time.Now().Add(ioTimeout))
			io.WriteString(c, "POST "+base+"/upload HTTP/1.1\r\nHost: "+host+"\r\nTransfer-Encoding: chunked\r\n\r\n"+
				"5\r\nhello\r\n0\r\n"+tc.trailer+"\r\n")
			resp, err := http.ReadResponse(bufio.NewReader(c), &http.Request{Method: "POST"})
			if err != nil || resp.StatusCode != 400 || resp.Header.Get("X-Proxy-Error") != "malformed_request" {
				t.Fatalf("malformed trailer: %v %v, want 400 malformed_request", resp, err)
			}
			if _, trailers := o.seen(); len(trailers) != 0 {
				t.Errorf("origin saw trailers %v from a malformed section", trailers)
			}
			if status, body := getVia(t, p, base+"/after", 0); status != 200 || string(body) != "ok" {
				t.Errorf("after a malformed trailer: %d %q, want the proxy serving", status, body)
			}
		})
	}
}
