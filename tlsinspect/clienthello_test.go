package tlsinspect

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"golang.org/x/crypto/cryptobyte"

	"github.com/egressd/egressd/internal/testpki"
)

// captureHello returns the bytes a real crypto/tls client sends first: its
// ClientHello records, read off a net.Pipe before the handshake is aborted.
func captureHello(t testing.TB, cfg *tls.Config) []byte {
	t.Helper()
	client, server := net.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = tls.Client(client, cfg).Handshake() // fails once server closes
	}()
	_ = server.SetDeadline(time.Now().Add(5 * time.Second))
	hdr := make([]byte, recordHeaderLen)
	if _, err := io.ReadFull(server, hdr); err != nil {
		t.Fatal(err)
	}
	body := make([]byte, int(hdr[3])<<8|int(hdr[4]))
	if _, err := io.ReadFull(server, body); err != nil {
		t.Fatal(err)
	}
	server.Close()
	client.Close()
	<-done
	return append(hdr, body...)
}

// refragment splits the handshake payload of one-record hello into
// records of at most size bytes, as a client (or middlebox) may.
func refragment(hello []byte, size int) []byte {
	payload := hello[recordHeaderLen:]
	var out []byte
	for len(payload) > 0 {
		n := min(size, len(payload))
		out = append(out, recordTypeHandshake, 3, 1, byte(n>>8), byte(n))
		out = append(out, payload[:n]...)
		payload = payload[n:]
	}
	return out
}

// helloSpec builds a synthetic ClientHello for cases real clients never send.
type helloSpec struct {
	exts      func(b *cryptobyte.Builder)
	noExts    bool
	recordVer uint16
}

func buildHello(s helloSpec) []byte {
	var body cryptobyte.Builder
	body.AddUint16(tls.VersionTLS12)
	body.AddBytes(make([]byte, 32))
	body.AddUint8LengthPrefixed(func(*cryptobyte.Builder) {})
	body.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddUint16(tls.TLS_AES_128_GCM_SHA256) })
	body.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddUint8(0) })
	if !s.noExts {
		body.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) {
			if s.exts != nil {
				s.exts(b)
			}
		})
	}
	var hs cryptobyte.Builder
	hs.AddUint8(handshakeClientHello)
	hs.AddUint24LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(body.BytesOrPanic()) })
	msg := hs.BytesOrPanic()
	ver := s.recordVer
	if ver == 0 {
		ver = tls.VersionTLS10
	}
	return append([]byte{recordTypeHandshake, byte(ver >> 8), byte(ver), byte(len(msg) >> 8), byte(len(msg))}, msg...)
}

func sniExt(names ...string) func(*cryptobyte.Builder) {
	return func(b *cryptobyte.Builder) {
		b.AddUint16(extServerName)
		b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) {
			b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) {
				for _, n := range names {
					b.AddUint8(sniHostName)
					b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes([]byte(n)) })
				}
			})
		})
	}
}

func rawExt(typ uint16, data []byte) func(*cryptobyte.Builder) {
	return func(b *cryptobyte.Builder) {
		b.AddUint16(typ)
		b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(data) })
	}
}

func exts(fs ...func(*cryptobyte.Builder)) func(*cryptobyte.Builder) {
	return func(b *cryptobyte.Builder) {
		for _, f := range fs {
			f(b)
		}
	}
}

func TestPeekClientHello(t *testing.T) {
	withSNI := captureHello(t, &tls.Config{ServerName: "API.Example.com", NextProtos: []string{"h2", "http/1.1"}})
	noSNI := captureHello(t, &tls.Config{InsecureSkipVerify: true})   //nolint:gosec // never completes; only the hello is read.
	ipTarget := captureHello(t, &tls.Config{ServerName: "192.0.2.1"}) // crypto/tls omits IP SNI (RFC 6066 §3)
	tls12 := captureHello(t, &tls.Config{ServerName: "old.example", MaxVersion: tls.VersionTLS12})
	unknownType := func(b *cryptobyte.Builder) {
		b.AddUint16(extServerName)
		b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) {
			b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) {
				b.AddUint8(7)
				b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes([]byte("ignored")) })
				b.AddUint8(sniHostName)
				b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes([]byte("kept.example")) })
			})
		})
	}

	tests := []struct {
		name     string
		in       []byte
		size     int // bufio size; MaxPeek when 0
		oneByte  bool
		wantSNI  string
		wantALPN []string
		wantErr  string
		wantIs   error
	}{
		{name: "crypto/tls hello", in: withSNI, wantSNI: "api.example.com", wantALPN: []string{"h2", "http/1.1"}},
		{name: "no SNI", in: noSNI},
		{name: "IP target sends no SNI", in: ipTarget},
		{name: "TLS 1.2 only client", in: tls12, wantSNI: "old.example"},
		{name: "arrives one byte per read", in: withSNI, oneByte: true, wantSNI: "api.example.com", wantALPN: []string{"h2", "http/1.1"}},
		{name: "split over 7-byte records", in: refragment(withSNI, 7), wantSNI: "api.example.com", wantALPN: []string{"h2", "http/1.1"}},
		{name: "one byte per record", in: refragment(withSNI, 1), wantSNI: "api.example.com", wantALPN: []string{"h2", "http/1.1"}},
		{name: "split over 100-byte records read bytewise", in: refragment(withSNI, 100), oneByte: true, wantSNI: "api.example.com", wantALPN: []string{"h2", "http/1.1"}},
		{name: "followed by more data", in: append(append([]byte{}, withSNI...), "trailing application data"...), wantSNI: "api.example.com", wantALPN: []string{"h2", "http/1.1"}},
		{name: "unknown name type ignored", in: buildHello(helloSpec{exts: unknownType}), wantSNI: "kept.example"},
		{name: "hello without extensions", in: buildHello(helloSpec{noExts: true})},

		{name: "HTTP request", in: []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), wantErr: "tlsinspect: not a TLS handshake", wantIs: ErrNotTLS},
		{name: "SSH banner", in: []byte("SSH-2.0-OpenSSH_9.6\r\n"), wantErr: "tlsinspect: not a TLS handshake", wantIs: ErrNotTLS},
		{name: "single non-TLS byte then silence", in: []byte("G"), wantErr: "tlsinspect: not a TLS handshake", wantIs: ErrNotTLS},
		{name: "0x16 with a bad version", in: []byte{0x16, 0x04, 0x01, 0x00, 0x10}, wantErr: "tlsinspect: not a TLS handshake", wantIs: ErrNotTLS},
		{name: "0x16 with a future minor version", in: []byte{0x16, 0x03, 0x05, 0x00, 0x10}, wantErr: "tlsinspect: not a TLS handshake", wantIs: ErrNotTLS},
		{name: "SSLv2-style hello", in: []byte{0x80, 0x2e, 0x01, 0x03, 0x01}, wantErr: "tlsinspect: not a TLS handshake", wantIs: ErrNotTLS},

		{name: "empty stream", in: nil, wantErr: "peek ClientHello: EOF", wantIs: io.EOF},
		{name: "truncated header", in: withSNI[:3], wantErr: "peek ClientHello: unexpected EOF", wantIs: io.ErrUnexpectedEOF},
		{name: "truncated body", in: withSNI[:len(withSNI)/2], wantErr: "peek ClientHello: unexpected EOF", wantIs: io.ErrUnexpectedEOF},
		{name: "truncated across records", in: refragment(withSNI, 50)[:300], wantErr: "peek ClientHello: unexpected EOF", wantIs: io.ErrUnexpectedEOF},
		{
			name: "zero-length record", in: []byte{0x16, 3, 1, 0, 0},
			wantErr: "tlsinspect: malformed ClientHello: record length 0", wantIs: ErrMalformedHello,
		},
		{
			name: "oversized record length", in: []byte{0x16, 3, 1, 0x40, 0x01},
			wantErr: "tlsinspect: malformed ClientHello: record length 16385", wantIs: ErrMalformedHello,
		},
		{
			name: "record larger than the bufio buffer", in: append([]byte{0x16, 3, 1, 0x20, 0x00}, make([]byte, 0x2000)...), size: 4096,
			wantErr: "tlsinspect: ClientHello larger than the peek limit: need 8197 bytes, limit 4096", wantIs: ErrHelloTooLarge,
		},
		{
			name: "hello claims more than the limit", in: []byte{0x16, 3, 1, 0, 4, 1, 0x01, 0, 0},
			wantErr: "tlsinspect: ClientHello larger than the peek limit: 65536 bytes", wantIs: ErrHelloTooLarge,
		},
		{
			name: "not a ClientHello", in: []byte{0x16, 3, 3, 0, 4, 2, 0, 0, 0},
			wantErr: "tlsinspect: malformed ClientHello: handshake type 2 is not ClientHello", wantIs: ErrMalformedHello,
		},
		{
			name: "alert record in the middle", in: append(refragment(withSNI, 40)[:45], 0x15, 3, 3, 0, 2, 2, 40),
			wantErr: "tlsinspect: malformed ClientHello: record type 0x15 version 0x303 inside the ClientHello", wantIs: ErrMalformedHello,
		},
		{
			name: "garbage body", in: []byte{0x16, 3, 1, 0, 8, 1, 0, 0, 4, 0xde, 0xad, 0xbe, 0xef},
			wantErr: "tlsinspect: malformed ClientHello: bad fixed fields", wantIs: ErrMalformedHello,
		},
		{
			name: "duplicate SNI extension", in: buildHello(helloSpec{exts: exts(sniExt("a.example"), sniExt("b.example"))}),
			wantErr: "tlsinspect: malformed ClientHello: duplicate extension 0", wantIs: ErrMalformedHello,
		},
		{
			name: "two host names", in: buildHello(helloSpec{exts: sniExt("a.example", "b.example")}),
			wantErr: "tlsinspect: malformed ClientHello: more than one host_name", wantIs: ErrMalformedHello,
		},
		{
			name: "SNI with trailing dot", in: buildHello(helloSpec{exts: sniExt("a.example.")}),
			wantErr: "tlsinspect: malformed ClientHello: server_name has a trailing dot", wantIs: ErrMalformedHello,
		},
		{
			name: "SNI with a path", in: buildHello(helloSpec{exts: sniExt("a.example/../x")}),
			wantErr: `tlsinspect: malformed ClientHello: server_name "a.example/../x" is not a host name`, wantIs: ErrMalformedHello,
		},
		{
			name: "SNI with a port", in: buildHello(helloSpec{exts: sniExt("a.example:443")}),
			wantErr: `tlsinspect: malformed ClientHello: server_name "a.example:443" is not a host name`, wantIs: ErrMalformedHello,
		},
		{
			name: "empty server_name list", in: buildHello(helloSpec{exts: rawExt(extServerName, []byte{0, 0})}),
			wantErr: "tlsinspect: malformed ClientHello: bad server_name list", wantIs: ErrMalformedHello,
		},
		{
			name: "empty ALPN protocol", in: buildHello(helloSpec{exts: rawExt(extALPN, []byte{0, 1, 0})}),
			wantErr: "tlsinspect: malformed ClientHello: bad ALPN protocol", wantIs: ErrMalformedHello,
		},
		{
			name: "extension overruns", in: buildHello(helloSpec{exts: func(b *cryptobyte.Builder) { b.AddBytes([]byte{0, 5, 0, 9, 1}) }}),
			wantErr: "tlsinspect: malformed ClientHello: bad extension", wantIs: ErrMalformedHello,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var src io.Reader = bytes.NewReader(tc.in)
			if tc.oneByte {
				src = iotest.OneByteReader(src)
			}
			size := tc.size
			if size == 0 {
				size = MaxPeek
			}
			r := bufio.NewReaderSize(src, size)
			info, err := PeekClientHello(r)
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr || !errors.Is(err, tc.wantIs) {
					t.Fatalf("PeekClientHello() = %+v, %v\nwant error %s", info, err, tc.wantErr)
				}
			} else {
				if err != nil {
					t.Fatalf("PeekClientHello() error = %v", err)
				}
				if info.SNI != tc.wantSNI || strings.Join(info.ALPN, ",") != strings.Join(tc.wantALPN, ",") {
					t.Fatalf("PeekClientHello() = %+v, want SNI %q ALPN %q", info, tc.wantSNI, tc.wantALPN)
				}
			}
			// Whatever the outcome, nothing was consumed: a splice
			// forwards exactly what the client sent.
			rest, err := io.ReadAll(r)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(rest, tc.in) {
				t.Fatalf("after peek the reader yields %d bytes, want the original %d", len(rest), len(tc.in))
			}
		})
	}
}

// TestPeekThenServe is the bump path on real sockets: peek the SNI off a
// loopback connection, mint for it, and let crypto/tls read the very same
// buffered bytes to complete the handshake.
func TestPeekThenServe(t *testing.T) {
	insp, _, ca, _ := newInspector(t, nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	type result struct {
		sni string
		err error
	}
	done := make(chan result, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- result{err: err}
			return
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		r := bufio.NewReaderSize(c, MaxPeek)
		hello, err := PeekClientHello(r)
		if err != nil {
			done <- result{err: err}
			return
		}
		cfg, err := insp.TLSConfigFor(hello.SNI)
		if err != nil {
			done <- result{err: err}
			return
		}
		tc := tls.Server(bufferedConn{Conn: c, r: r}, cfg)
		if err := tc.Handshake(); err != nil {
			done <- result{err: err}
			return
		}
		_, err = tc.Write([]byte("hello through the bump"))
		done <- result{sni: hello.SNI, err: err}
	}()

	raw, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	_ = raw.SetDeadline(time.Now().Add(5 * time.Second))
	// Deliver the hello in two TCP writes with a pause so the peek has to
	// wait for the second segment.
	split := &splitWriter{Conn: raw, first: 20, pause: 20 * time.Millisecond}
	client := tls.Client(split, &tls.Config{ServerName: "peek.example", RootCAs: testpki.Pool(ca.Cert), Time: func() time.Time { return t0 }})
	if err := client.Handshake(); err != nil {
		t.Fatalf("client handshake: %v", err)
	}
	got := make([]byte, len("hello through the bump"))
	if _, err := io.ReadFull(client, got); err != nil {
		t.Fatal(err)
	}
	res := <-done
	if res.err != nil || res.sni != "peek.example" {
		t.Fatalf("server: sni %q err %v", res.sni, res.err)
	}
	if string(got) != "hello through the bump" {
		t.Fatalf("read %q", got)
	}
}

// bufferedConn reads through the bufio.Reader that holds the peeked bytes.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c bufferedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// splitWriter sends the first write in two pieces separated by a pause.
type splitWriter struct {
	net.Conn
	first int
	pause time.Duration
	done  bool
}

func (w *splitWriter) Write(p []byte) (int, error) {
	if w.done || len(p) <= w.first {
		return w.Conn.Write(p)
	}
	w.done = true
	n, err := w.Conn.Write(p[:w.first])
	if err != nil {
		return n, err
	}
	time.Sleep(w.pause)
	m, err := w.Conn.Write(p[w.first:])
	return n + m, err
}

// TestPeekSilentClient: a server-speaks-first protocol sends nothing; the
// caller's deadline ends the peek with a timeout it can recognise.
func TestPeekSilentClient(t *testing.T) {
	client, server := net.Pipe()
	defer client.Close()
	defer server.Close()
	_ = server.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	_, err := PeekClientHello(bufio.NewReaderSize(server, MaxPeek))
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() || err.Error() != "peek ClientHello: read pipe: i/o timeout" {
		t.Fatalf("PeekClientHello() = %v, want a wrapped timeout", err)
	}
}

// FuzzPeekClientHello: for any input the peek never panics, never
// consumes, is deterministic, and only ever reports a valid host as SNI.
func FuzzPeekClientHello(f *testing.F) {
	f.Add(captureHello(f, &tls.Config{ServerName: "fuzz.example", NextProtos: []string{"http/1.1"}}))
	f.Add(buildHello(helloSpec{exts: sniExt("a.example")}))
	f.Add([]byte("GET / HTTP/1.1\r\n\r\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		r := bufio.NewReaderSize(bytes.NewReader(in), MaxPeek)
		info, err := PeekClientHello(r)
		again, err2 := PeekClientHello(r)
		if (err == nil) != (err2 == nil) || info.SNI != again.SNI || strings.Join(info.ALPN, ",") != strings.Join(again.ALPN, ",") {
			t.Fatalf("second peek differs: %+v %v vs %+v %v", info, err, again, err2)
		}
		if err == nil && info.SNI != "" {
			if n, nerr := normalizeHost(info.SNI); nerr != nil || n != info.SNI {
				t.Fatalf("SNI %q is not a normalized host (%q, %v)", info.SNI, n, nerr)
			}
		}
		if err == nil && (len(in) == 0 || in[0] != recordTypeHandshake) {
			t.Fatalf("accepted input starting with %x", in[:min(1, len(in))])
		}
		rest, rerr := io.ReadAll(r)
		if rerr != nil || !bytes.Equal(rest, in) {
			t.Fatalf("peek consumed input: %d of %d bytes left", len(rest), len(in))
		}
	})
}

func newPeekReader(b []byte) *bufio.Reader {
	return bufio.NewReaderSize(bytes.NewReader(b), MaxPeek)
}
