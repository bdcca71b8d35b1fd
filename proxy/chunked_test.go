package proxy

import (
	"bufio"
	"errors"
	"io"
	"strings"
	"testing"
)

func TestChunkedReader(t *testing.T) {
	for _, tc := range []struct {
		name, in, body string
		err            error
	}{
		{"two chunks", "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", "hello world", nil},
		{"upper-case hex and an extension", "A;name=\"v\"\r\n0123456789\r\n0\r\n\r\n", "0123456789", nil},
		{"space before an extension", "3 ;x\r\nabc\r\n0\r\n\r\n", "abc", nil},
		{"fifteen hex digits", "00000000000000a\r\n0123456789\r\n0\r\n", "0123456789", nil},
		{"sixteen hex digits", "000000000000000a\r\n0123456789\r\n0\r\n", "", errBadChunk},
		{"negative size", "-5\r\nhello\r\n0\r\n", "", errBadChunk},
		{"no size", "\r\nhello\r\n0\r\n", "", errBadChunk},
		{"bare LF after the size", "5\nhello\r\n0\r\n", "", errBadChunk},
		{"junk after the size", "5x\r\nhello\r\n0\r\n", "", errBadChunk},
		{"control byte in an extension", "5;a\x01b\r\nhello\r\n0\r\n", "", errBadChunk},
		{"data longer than its size", "3\r\nhello\r\n0\r\n", "hel", errBadChunk},
		{"bare LF after the data", "5\r\nhello\n0\r\n", "hello", errBadChunk},
		{"cut in the data", "5\r\nhel", "hel", io.ErrUnexpectedEOF},
		{"cut before the last chunk", "5\r\nhello\r\n", "hello", io.ErrUnexpectedEOF},
		{"oversized size line", "5;" + strings.Repeat("x", maxChunkLine) + "\r\nhello\r\n0\r\n", "", errBadChunk},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := io.ReadAll(newChunkedReader(bufio.NewReaderSize(strings.NewReader(tc.in), 64)))
			if string(got) != tc.body || !errors.Is(err, tc.err) && !(tc.err == nil && err == nil) {
				t.Fatalf("read %q, %v; want %q, %v", got, err, tc.body, tc.err)
			}
		})
	}
}

// TestCheckBufferedChunks: what arrived with the head is judged by the
// same parser, and a body that merely stops early is not an error.
func TestCheckBufferedChunks(t *testing.T) {
	for _, tc := range []struct {
		in  string
		err error
	}{
		{"", nil},
		{"5\r\nhel", nil},
		{"5\r\nhello\r", nil},
		{"5\r\nhello\r\n0\r\n\r\n", nil},
		{"5\r\nhello\r\n0\r\n\r\nGET / HTTP/1.1\r\n", nil}, // a pipelined request after the body
		{"5\r\nhelloX", errBadChunk},
		{"zz\r\n", errBadChunk},
		{"10000000000000000\r\n", errBadChunk},
	} {
		br := bufio.NewReader(strings.NewReader(tc.in))
		br.Peek(len(tc.in))
		if err := checkBufferedChunks(br); !errors.Is(err, tc.err) && !(tc.err == nil && err == nil) {
			t.Errorf("%q: %v, want %v", tc.in, err, tc.err)
		}
		if br.Buffered() != len(tc.in) {
			t.Errorf("%q: the check consumed bytes", tc.in)
		}
	}
}

func TestParseTarget(t *testing.T) {
	for _, tc := range []struct {
		method, url string
		want        string // Method Scheme Host:Port Path
		err         bool
	}{
		{"", "http://OK.Example.:080/a/./b/../c", "GET http ok.example:80 /a/c", false},
		{"", "https://api.example.com/x", "CONNECT https api.example.com:443 ", false},
		{"post", "https://api.example.com/%61dmin", "POST https api.example.com:443 /admin", false},
		{"", "http://[::1]:8080", "GET http ::1:8080 /", false},
		{"", "http://a.example/a%2Fb", "", true},
		{"", "http://user@a.example/", "", true},
		{"", "ftp://a.example/", "", true},
		{"", "/relative", "", true},
		{"G T", "http://a.example/", "", true},
		{"", "http://a.example:0/", "", true},
	} {
		got, err := ParseTarget(tc.method, tc.url)
		if tc.err {
			if err == nil {
				t.Errorf("%s %s: %+v, want an error", tc.method, tc.url, got)
			}
			continue
		}
		s := got.Method + " " + got.Scheme + " " + got.Host + ":" + itoa(got.Port) + " " + got.Path
		if err != nil || s != tc.want {
			t.Errorf("%s %s: %q, %v; want %q", tc.method, tc.url, s, err, tc.want)
		}
	}
}

func itoa(p uint16) string {
	var b []byte
	for {
		b = append([]byte{byte('0' + p%10)}, b...)
		if p /= 10; p == 0 {
			return string(b)
		}
	}
}

func TestUpgradeAllowed(t *testing.T) {
	allowed := []string{"websocket"}
	for v, want := range map[string]bool{
		"websocket": true, "WebSocket/13": true, "websocket, h2c": false, "h2c": false, "": false, " , ": false,
	} {
		if got := upgradeAllowed(allowed, []byte(v)); got != want {
			t.Errorf("upgradeAllowed(%q) = %v, want %v", v, got, want)
		}
	}
}
