package proxy

import (
	"bufio"
	"errors"
	"strings"
	"testing"
)

func parse(t testing.TB, raw string) (*request, error) {
	t.Helper()
	r := &request{}
	br := bufio.NewReaderSize(strings.NewReader(raw), 4096)
	if err := readHead(br, &r.h, 64<<10); err != nil {
		return r, err
	}
	return r, parseRequest(r, nil)
}

func TestParseRequestFraming(t *testing.T) {
	tests := []struct {
		name    string
		raw     string
		wantErr error
		wantCL  int64
		chunked bool
	}{
		{name: "get", raw: "GET http://a.example/ HTTP/1.1\r\nHost: a.example\r\n\r\n", wantCL: -1},
		{name: "bare LF", raw: "GET http://a.example/ HTTP/1.1\nHost: a.example\n\n", wantCL: -1},
		{name: "leading empty line ignored", raw: "\r\nGET http://a.example/ HTTP/1.1\r\nHost: a\r\n\r\n", wantCL: -1},
		{name: "content-length", raw: "POST http://a/ HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n", wantCL: 5},
		{name: "repeated equal CL", raw: "POST http://a/ HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n", wantCL: 5},
		{name: "CL list equal", raw: "POST http://a/ HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\n", wantCL: 5},
		{name: "chunked", raw: "POST http://a/ HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n", wantCL: -1, chunked: true},
		{name: "chunked mixed case", raw: "POST http://a/ HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: ChUnKeD\r\n\r\n", wantCL: -1, chunked: true},
		{name: "CL and TE", raw: "POST http://a/ HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", wantErr: errSmuggling},
		{name: "TE and CL", raw: "POST http://a/ HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n", wantErr: errSmuggling},
		{name: "conflicting CL", raw: "POST http://a/ HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", wantErr: errSmuggling},
		{name: "CL list conflicting", raw: "POST http://a/ HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 6\r\n\r\n", wantErr: errSmuggling},
		{name: "CL sign", raw: "POST http://a/ HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\n", wantErr: errSmuggling},
		{name: "CL empty", raw: "POST http://a/ HTTP/1.1\r\nHost: a\r\nContent-Length: \r\n\r\n", wantErr: errSmuggling},
		{name: "CL hex", raw: "POST http://a/ HTTP/1.1\r\nHost: a\r\nContent-Length: 0x5\r\n\r\n", wantErr: errSmuggling},
		{name: "TE xchunked", raw: "POST http://a/ HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n", wantErr: errSmuggling},
		{name: "TE chunked then identity", raw: "POST http://a/ HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, identity\r\n\r\n", wantErr: errSmuggling},
		{name: "TE gzip, chunked", raw: "POST http://a/ HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", wantErr: errBadTE},
		{name: "TE twice", raw: "POST http://a/ HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", wantErr: errBadTE},
		{name: "TE quoted", raw: "POST http://a/ HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \"chunked\"\r\n\r\n", wantErr: errSmuggling},
		{name: "TE in HTTP/1.0", raw: "POST http://a/ HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", wantErr: errSmuggling},
		{name: "obs-fold", raw: "GET http://a/ HTTP/1.1\r\nHost: a\r\nX-A: b\r\n c\r\n\r\n", wantErr: errObsFold},
		{name: "space before colon", raw: "GET http://a/ HTTP/1.1\r\nHost: a\r\nContent-Length : 5\r\n\r\n", wantErr: errMalformed},
		{name: "bare CR in value", raw: "GET http://a/ HTTP/1.1\r\nHost: a\r\nX-A: b\rc\r\n\r\n", wantErr: errMalformed},
		{name: "NUL in value", raw: "GET http://a/ HTTP/1.1\r\nHost: a\r\nX-A: b\x00c\r\n\r\n", wantErr: errMalformed},
		{name: "no colon", raw: "GET http://a/ HTTP/1.1\r\nHost: a\r\nbogus\r\n\r\n", wantErr: errMalformed},
		{name: "missing host 1.1", raw: "GET http://a/ HTTP/1.1\r\n\r\n", wantErr: errBadHost},
		{name: "two hosts", raw: "GET http://a/ HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", wantErr: errBadHost},
		{name: "origin form", raw: "GET / HTTP/1.1\r\nHost: a\r\n\r\n", wantErr: errNotProxy},
		{name: "HTTP/2 line", raw: "PRI * HTTP/2.0\r\n\r\n", wantErr: errBadVersion},
		{name: "userinfo", raw: "GET http://u:p@a/ HTTP/1.1\r\nHost: a\r\n\r\n", wantErr: errBadTarget},
		{name: "bad expect", raw: "GET http://a/ HTTP/1.1\r\nHost: a\r\nExpect: magic\r\n\r\n", wantErr: errBadExpect},
		{name: "connect with body", raw: "CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\nContent-Length: 3\r\n\r\n", wantErr: errMalformed},
		{name: "connect without port", raw: "CONNECT a HTTP/1.1\r\nHost: a\r\n\r\n", wantErr: errBadTarget},
		{name: "connect port zero", raw: "CONNECT a:0 HTTP/1.1\r\nHost: a\r\n\r\n", wantErr: errBadTarget},
		{name: "double space", raw: "GET  http://a/ HTTP/1.1\r\nHost: a\r\n\r\n", wantErr: errMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := parse(t, tc.raw)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if tc.wantErr != nil {
				return
			}
			if r.contentLength != tc.wantCL || r.chunked != tc.chunked {
				t.Fatalf("framing = CL %d chunked %v, want CL %d chunked %v", r.contentLength, r.chunked, tc.wantCL, tc.chunked)
			}
		})
	}
}

func TestParseRequestTargets(t *testing.T) {
	tests := []struct {
		name, raw string
		host      string
		port      uint16
		path      string
		url       string
	}{
		{name: "default port", raw: "GET http://Example.COM./a?b=1 HTTP/1.1\r\nHost: x\r\n\r\n", host: "example.com", port: 80, path: "/a", url: "http://example.com/a?b=1"},
		{name: "padded default port is canonical", raw: "GET http://a.example:0080/x HTTP/1.1\r\nHost: x\r\n\r\n", host: "a.example", port: 80, path: "/x", url: "http://a.example/x"},
		{name: "encoded unreserved and dot segments", raw: "GET http://a.example/b/..//%61dmin?x=%2F HTTP/1.1\r\nHost: x\r\n\r\n", host: "a.example", port: 80, path: "/admin", url: "http://a.example/admin?x=%2F"},
		{name: "explicit port", raw: "GET http://a.example:8080 HTTP/1.1\r\nHost: x\r\n\r\n", host: "a.example", port: 8080, path: "/", url: "http://a.example:8080/"},
		{name: "query only", raw: "GET http://a.example?q HTTP/1.1\r\nHost: x\r\n\r\n", host: "a.example", port: 80, path: "/", url: "http://a.example/?q"},
		{name: "https absolute", raw: "GET https://a.example/x HTTP/1.1\r\nHost: x\r\n\r\n", host: "a.example", port: 443, path: "/x", url: "https://a.example/x"},
		{name: "ipv6", raw: "GET http://[::1]:81/ HTTP/1.1\r\nHost: x\r\n\r\n", host: "::1", port: 81, path: "/", url: "http://[::1]:81/"},
		{name: "connect", raw: "CONNECT a.example:443 HTTP/1.1\r\nHost: a.example:443\r\n\r\n", host: "a.example", port: 443},
		{name: "fragment dropped", raw: "GET http://a.example/p#frag HTTP/1.1\r\nHost: x\r\n\r\n", host: "a.example", port: 80, path: "/p", url: "http://a.example/p"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := parse(t, tc.raw)
			if err != nil {
				t.Fatal(err)
			}
			if r.target.Host != tc.host || r.target.Port != tc.port || r.target.Path != tc.path {
				t.Fatalf("target = %+v, want host %q port %d path %q", r.target, tc.host, tc.port, tc.path)
			}
			if r.method != "CONNECT" {
				if got := absoluteURL(r); got != tc.url {
					t.Fatalf("url = %q, want %q", got, tc.url)
				}
			}
		})
	}
}

func TestReadHeadLimit(t *testing.T) {
	raw := "GET http://a/ HTTP/1.1\r\nHost: a\r\nX-Big: " + strings.Repeat("a", 70<<10) + "\r\n\r\n"
	_, err := parse(t, raw)
	if !errors.Is(err, errHeadTooLarge) {
		t.Fatalf("err = %v, want errHeadTooLarge", err)
	}
	if status, _ := statusFor(err); status != 431 {
		t.Fatalf("status = %d, want 431", status)
	}
}

func TestBasicCredentials(t *testing.T) {
	r, err := parse(t, "GET http://a/ HTTP/1.1\r\nHost: a\r\nProxy-Authorization: Basic YWxpY2U6czNjcjN0OnRvbw==\r\n\r\n")
	if err != nil {
		t.Fatal(err)
	}
	if !r.creds.Present || r.creds.User != "alice" || r.creds.Password != "s3cr3t:too" {
		t.Fatalf("creds = %+v", r.creds)
	}
	r, _ = parse(t, "GET http://a/ HTTP/1.1\r\nHost: a\r\nProxy-Authorization: Bearer x\r\n\r\n")
	if !r.creds.Present || r.creds.User != "" {
		t.Fatalf("non-basic creds = %+v, want present and empty", r.creds)
	}
}

// FuzzRequestHead feeds arbitrary bytes through the head reader and the
// request parser. Properties: no panic; an accepted request has exactly
// one framing, a target with a port, and re-parses to the same target.
func FuzzRequestHead(f *testing.F) {
	for _, s := range []string{
		"GET http://a.example/ HTTP/1.1\r\nHost: a\r\n\r\n",
		"POST http://a/ HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
		"CONNECT [::1]:443 HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET http://0x7f.1/ HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
		"GET http://a/ HTTP/1.1\r\nHost: a\r\n X: folded\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := parse(t, string(data))
		if err != nil {
			return
		}
		if r.chunked && r.contentLength >= 0 {
			t.Fatalf("accepted both chunked and Content-Length %d", r.contentLength)
		}
		if r.target.Port == 0 || r.target.Host == "" {
			t.Fatalf("accepted a target without host or port: %+v", r.target)
		}
		if r.method == "CONNECT" {
			return
		}
		again, err := parse(t, r.method+" "+absoluteURL(r)+" HTTP/1.1\r\nHost: x\r\n\r\n")
		if err != nil {
			t.Fatalf("re-parse of %q: %v", absoluteURL(r), err)
		}
		if again.target != r.target {
			t.Fatalf("re-parse changed target: %+v -> %+v", r.target, again.target)
		}
	})
}
