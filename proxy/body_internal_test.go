package proxy

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"strings"
	"testing"
	"time"
)

// These tests drive the response framing decision (RFC 9112 §6.3) and
// bodyCopy's re-framing on in-memory readers, and its splice path on
// loopback TCP pairs.

func responseHead(t *testing.T, raw string) *head {
	t.Helper()
	var h head
	if err := readHead(bufio.NewReader(strings.NewReader(raw)), &h, 64<<10); err != nil {
		t.Fatalf("readHead(%q): %v", raw, err)
	}
	return &h
}

func TestResponseFraming(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		method  string
		status  int
		fields  string
		want    framing
		n       int64
		both    bool // chunked and Content-Length: not reusable
		wantErr error
	}{
		{name: "HEAD has no body whatever it says", method: "HEAD", status: 200, fields: "Content-Length: 10\r\n", want: bodyNone},
		{name: "1xx", method: "GET", status: 103, fields: "Content-Length: 10\r\n", want: bodyNone},
		{name: "204", method: "GET", status: 204, fields: "Transfer-Encoding: chunked\r\n", want: bodyNone},
		{name: "304", method: "GET", status: 304, fields: "Content-Length: 10\r\n", want: bodyNone},
		{name: "Content-Length", method: "GET", status: 200, fields: "Content-Length: 10\r\n", want: bodyLength, n: 10},
		{name: "zero Content-Length", method: "GET", status: 200, fields: "Content-Length: 0\r\n", want: bodyLength, n: 0},
		{name: "repeated equal Content-Length", method: "GET", status: 200, fields: "Content-Length: 7\r\nContent-Length: 7\r\n", want: bodyLength, n: 7},
		{name: "equal Content-Length list", method: "GET", status: 200, fields: "Content-Length: 7, 7\r\n", want: bodyLength, n: 7},
		{name: "conflicting Content-Length", method: "GET", status: 200, fields: "Content-Length: 5\r\nContent-Length: 6\r\n", wantErr: errUpstreamProtocol},
		{name: "conflicting Content-Length list", method: "GET", status: 200, fields: "Content-Length: 5, 6\r\n", wantErr: errUpstreamProtocol},
		{name: "non-numeric Content-Length", method: "GET", status: 200, fields: "Content-Length: 5x\r\n", wantErr: errUpstreamProtocol},
		{name: "negative Content-Length", method: "GET", status: 200, fields: "Content-Length: -1\r\n", wantErr: errUpstreamProtocol},
		{name: "chunked", method: "GET", status: 200, fields: "Transfer-Encoding: chunked\r\n", want: bodyChunked},
		{name: "chunked case-insensitive", method: "POST", status: 201, fields: "transfer-encoding: CHUNKED\r\n", want: bodyChunked},
		{name: "chunked and Content-Length", method: "GET", status: 200, fields: "Content-Length: 3\r\nTransfer-Encoding: chunked\r\n", want: bodyChunked, both: true},
		{name: "chunked last of two fields", method: "GET", status: 200, fields: "Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n", want: bodyChunked},
		{name: "coding after chunked reads to close", method: "GET", status: 200, fields: "Transfer-Encoding: chunked, gzip\r\n", want: bodyClose},
		{name: "other coding with Content-Length reads to close", method: "GET", status: 200, fields: "Transfer-Encoding: gzip\r\nContent-Length: 3\r\n", want: bodyClose, both: true},
		{name: "neither reads to close", method: "GET", status: 200, fields: "", want: bodyClose},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := responseHead(t, "HTTP/1.1 200 OK\r\n"+tc.fields+"\r\n")
			f, n, both, err := responseFraming(tc.method, tc.status, h)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("error %v, want %v", err, tc.wantErr)
			}
			if err != nil {
				return
			}
			if f != tc.want || (f == bodyLength && n != tc.n) || both != tc.both {
				t.Errorf("got framing %d n %d both %v, want %d n %d both %v", f, n, both, tc.want, tc.n, tc.both)
			}
		})
	}
}

// failWriter fails every write, as a receiver that went away does.
type failWriter struct{}

var errReceiverGone = errors.New("receiver gone")

func (failWriter) Write([]byte) (int, error) { return 0, errReceiverGone }

func TestBodyCopyReframes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		f          framing
		n          int64
		outChunked bool
		in         string
		out        string
		moved      int64
		rest       string // left in the source: the next message
		srcErr     error  // want a sender-side relayError wrapping this
	}{
		{name: "no body", f: bodyNone, in: "NEXT", rest: "NEXT"},
		{name: "length stops at its end", f: bodyLength, n: 5, in: "helloNEXT", out: "hello", moved: 5, rest: "NEXT"},
		{name: "length sent chunked", f: bodyLength, n: 5, outChunked: true, in: "helloNEXT", out: "5\r\nhello\r\n0\r\n\r\n", moved: 5, rest: "NEXT"},
		{name: "length cut short", f: bodyLength, n: 9, in: "hello", out: "hello", moved: 5, srcErr: io.ErrUnexpectedEOF},
		{name: "chunked keeps its trailer", f: bodyChunked, outChunked: true,
			in:  "5\r\nhello\r\n6\r\n world\r\n0\r\nX-Sum: 1\r\n\r\nNEXT",
			out: "5\r\nhello\r\n6\r\n world\r\n0\r\nX-Sum: 1\r\n\r\n", moved: 11, rest: "NEXT"},
		{name: "chunked to a reader by close drops the trailer", f: bodyChunked,
			in: "5\r\nhello\r\n0\r\nX-Sum: 1\r\n\r\nNEXT", out: "hello", moved: 5, rest: "NEXT"},
		{name: "chunked with a broken trailer", f: bodyChunked,
			in: "5\r\nhello\r\n0\r\nX-Sum: 1", out: "hello", moved: 5, srcErr: errChunkTrailer},
		{name: "close-delimited reads to EOF", f: bodyClose, in: "all of it", out: "all of it", moved: 9},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src := bufio.NewReader(strings.NewReader(tc.in))
			var out bytes.Buffer
			dst := bufio.NewWriter(&out)
			b := &bodyCopy{src: src, dst: dst}
			moved, err := b.copy(tc.f, tc.n, tc.outChunked)
			var re *relayError
			switch {
			case tc.srcErr == nil && err != nil:
				t.Fatalf("error %v", err)
			case tc.srcErr != nil && (!errors.As(err, &re) || !re.srcSide || !errors.Is(err, tc.srcErr)):
				t.Fatalf("error %v, want the sender blamed with %v", err, tc.srcErr)
			}
			dst.Flush()
			if out.String() != tc.out || moved != tc.moved {
				t.Errorf("wrote %q (%d moved), want %q (%d)", out.String(), moved, tc.out, tc.moved)
			}
			if rest, _ := io.ReadAll(src); tc.srcErr == nil && string(rest) != tc.rest {
				t.Errorf("left %q in the source, want %q", rest, tc.rest)
			}
		})
	}
}

// TestBodyCopyBlamesTheReceiver: a write failure is the receiver's, so a
// client that left is not reported as an upstream failure.
func TestBodyCopyBlamesTheReceiver(t *testing.T) {
	t.Parallel()
	b := &bodyCopy{src: bufio.NewReader(strings.NewReader("hello")), dst: bufio.NewWriterSize(failWriter{}, 16)}
	_, err := b.copy(bodyLength, 5, false)
	var re *relayError
	if !errors.As(err, &re) || re.srcSide || !errors.Is(err, errReceiverGone) {
		t.Fatalf("error %v, want the receiver blamed", err)
	}
}

// TestBodyCopySplicesLargeFixedBodies: a fixed-length body over the
// splice threshold between two TCP sockets arrives intact, including
// what was already buffered, and not a byte past its end is taken.
func TestBodyCopySplicesLargeFixedBodies(t *testing.T) {
	t.Parallel()
	body := bytes.Repeat([]byte("abcdefgh"), 40<<10) // 320 KiB
	senderApp, srcConn := tcpPair(t)
	dstConn, receiverApp := tcpPair(t)
	go func() {
		senderApp.Write(body)
		senderApp.Write([]byte("NEXT"))
	}()
	src := bufio.NewReaderSize(srcConn, 4096)
	if _, err := src.Peek(100); err != nil { // some of the body is already in user space
		t.Fatal(err)
	}
	b := &bodyCopy{src: src, srcConn: srcConn, dst: bufio.NewWriter(dstConn), dstConn: dstConn, idle: 10 * time.Second}
	got := make(chan []byte, 1)
	go func() {
		receiverApp.SetReadDeadline(time.Now().Add(20 * time.Second))
		b, _ := io.ReadAll(io.LimitReader(receiverApp, int64(len(body))))
		got <- b
	}()
	moved, err := b.copy(bodyLength, int64(len(body)), false)
	if err != nil || moved != int64(len(body)) {
		t.Fatalf("moved %d, %v; want %d", moved, err, len(body))
	}
	if r := <-got; sha256.Sum256(r) != sha256.Sum256(body) {
		t.Fatalf("receiver got %d bytes, not the body", len(r))
	}
	srcConn.SetReadDeadline(time.Now().Add(5 * time.Second))
	next := make([]byte, 4)
	if _, err := io.ReadFull(src, next); err != nil || string(next) != "NEXT" {
		t.Errorf("after the body the source holds %q, %v; want NEXT", next, err)
	}
}

// TestBodyCopySpliceCutShortBlamesTheSender: a sender that closes before
// its declared length is a sender-side failure.
func TestBodyCopySpliceCutShortBlamesTheSender(t *testing.T) {
	t.Parallel()
	senderApp, srcConn := tcpPair(t)
	dstConn, receiverApp := tcpPair(t)
	go io.Copy(io.Discard, receiverApp)
	go func() {
		senderApp.Write(make([]byte, 1000))
		senderApp.Close()
	}()
	b := &bodyCopy{src: bufio.NewReader(srcConn), srcConn: srcConn, dst: bufio.NewWriter(dstConn), dstConn: dstConn, idle: 10 * time.Second}
	moved, err := b.copy(bodyLength, spliceThreshold*2, false)
	var re *relayError
	if !errors.As(err, &re) || !re.srcSide || !errors.Is(err, io.ErrUnexpectedEOF) || moved != 1000 {
		t.Fatalf("moved %d, error %v; want 1000 and the sender blamed", moved, err)
	}
}

func TestSkipTrailer(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		ok   bool
		rest string
	}{
		{name: "empty", in: "\r\nNEXT", ok: true, rest: "NEXT"},
		{name: "bare LF", in: "\nNEXT", ok: true, rest: "NEXT"},
		{name: "fields", in: "A: 1\r\nB: 2\r\n\r\nNEXT", ok: true, rest: "NEXT"},
		{name: "unterminated", in: "A: 1\r\n"},
		{name: "over 8 KiB", in: strings.Repeat("A: "+strings.Repeat("x", 100)+"\r\n", 90) + "\r\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			br := bufio.NewReaderSize(strings.NewReader(tc.in), 16<<10)
			err := skipTrailer(br)
			if ok := err == nil; ok != tc.ok {
				t.Fatalf("error %v, want ok=%v", err, tc.ok)
			}
			if !tc.ok && !errors.Is(err, errChunkTrailer) {
				t.Errorf("error %v, want %v", err, errChunkTrailer)
			}
			if rest, _ := io.ReadAll(br); tc.ok && string(rest) != tc.rest {
				t.Errorf("left %q, want %q", rest, tc.rest)
			}
		})
	}
}

// TestBodyCopySpliceToAGoneReceiverBlamesTheReceiver: splice reports one
// error for both sockets; a receiver that has closed is the side blamed.
func TestBodyCopySpliceToAGoneReceiverBlamesTheReceiver(t *testing.T) {
	t.Parallel()
	senderApp, srcConn := tcpPair(t)
	dstConn, receiverApp := tcpPair(t)
	receiverApp.SetLinger(0)
	receiverApp.Close() // reset: writes to dstConn fail
	const n = 16 << 20
	go func() {
		chunk := make([]byte, 64<<10)
		for sent := 0; sent < n; sent += len(chunk) {
			if _, err := senderApp.Write(chunk); err != nil {
				return
			}
		}
	}()
	b := &bodyCopy{src: bufio.NewReader(srcConn), srcConn: srcConn, dst: bufio.NewWriter(dstConn), dstConn: dstConn, idle: 10 * time.Second}
	_, err := b.copy(bodyLength, n, false)
	var re *relayError
	if !errors.As(err, &re) || re.srcSide {
		t.Fatalf("error %v, want the receiver blamed", err)
	}
}
