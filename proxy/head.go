package proxy

import (
	"bufio"
	"bytes"
	"errors"
	"io"
)

// head is one HTTP/1 message head (request or response) kept as raw bytes
// with field offsets, so forwarding copies validated lines without building
// an http.Header map per request. The buffer is reused across the requests
// of a connection.
type head struct {
	buf    []byte
	line   span    // start line without its terminator
	fields []field // header fields in arrival order
}

type span struct{ start, end int32 }

type field struct{ name, value span }

func (h *head) bytes(s span) []byte { return h.buf[s.start:s.end] }

func (h *head) name(i int) []byte  { return h.bytes(h.fields[i].name) }
func (h *head) value(i int) []byte { return h.bytes(h.fields[i].value) }

// get returns the first value of the named field, and whether it was present.
func (h *head) get(name string) ([]byte, bool) {
	for i := range h.fields {
		if asciiEqualFold(h.name(i), name) {
			return h.value(i), true
		}
	}
	return nil, false
}

var (
	errHeadTooLarge = errors.New("proxy: request head too large")
	errMalformed    = errors.New("proxy: malformed message head")
	errObsFold      = errors.New("proxy: obsolete line folding")
)

// readHead reads a message head from br into h, up to max bytes. It accepts
// CRLF or bare LF line ends (RFC 9112 §2.2) and rejects what RFC 9112 says a
// recipient must not guess about: obs-fold, whitespace before the colon,
// bare CR and control bytes in names or values.
func readHead(br *bufio.Reader, h *head, max int) error {
	h.buf = h.buf[:0]
	h.fields = h.fields[:0]
	first, skipped := true, 0
	for {
		lineStart := len(h.buf)
		for {
			chunk, err := br.ReadSlice('\n')
			if len(h.buf)+len(chunk) > max {
				return errHeadTooLarge
			}
			h.buf = append(h.buf, chunk...)
			if err == nil {
				break
			}
			if errors.Is(err, bufio.ErrBufferFull) {
				continue
			}
			if errors.Is(err, io.EOF) && len(h.buf) > 0 {
				return io.ErrUnexpectedEOF
			}
			return err
		}
		end := len(h.buf) - 1 // drop '\n'
		if end > lineStart && h.buf[end-1] == '\r' {
			end--
		}
		line := h.buf[lineStart:end]
		if first {
			// RFC 9112 §2.2: a server SHOULD ignore at least one empty line
			// received before the request-line.
			if len(line) == 0 && skipped < 2 {
				skipped++
				h.buf = h.buf[:0]
				continue
			}
			if !validLine(line) {
				return errMalformed
			}
			h.line = span{int32(lineStart), int32(end)}
			first = false
			continue
		}
		if len(line) == 0 {
			return nil
		}
		if line[0] == ' ' || line[0] == '\t' {
			return errObsFold
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 || !isToken(line[:colon]) {
			return errMalformed
		}
		vs, ve := colon+1, len(line)
		for vs < ve && (line[vs] == ' ' || line[vs] == '\t') {
			vs++
		}
		for ve > vs && (line[ve-1] == ' ' || line[ve-1] == '\t') {
			ve--
		}
		if !validValue(line[vs:ve]) {
			return errMalformed
		}
		base := int32(lineStart)
		h.fields = append(h.fields, field{
			name:  span{base, base + int32(colon)},
			value: span{base + int32(vs), base + int32(ve)},
		})
	}
}

func validLine(b []byte) bool {
	for _, c := range b {
		if c < 0x20 && c != '\t' || c == 0x7f {
			return false
		}
	}
	return len(b) > 0
}

// validValue allows VCHAR, obs-text, SP and HTAB (RFC 9110 §5.5).
func validValue(b []byte) bool {
	for _, c := range b {
		if c < 0x20 && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// tokenTable marks tchar (RFC 9110 §5.6.2).
var tokenTable = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
		t[c-'a'+'A'] = true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		t[c] = true
	}
	return t
}()

func isToken(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if !tokenTable[c] {
			return false
		}
	}
	return true
}

func asciiEqualFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := 0; i < len(b); i++ {
		x, y := b[i], s[i]
		if x == y {
			continue
		}
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// forEachToken calls fn with each comma-separated, trimmed, non-empty
// element of a list-valued field (RFC 9110 §5.6.1).
func forEachToken(v []byte, fn func([]byte)) {
	for len(v) > 0 {
		var elem []byte
		if i := bytes.IndexByte(v, ','); i >= 0 {
			elem, v = v[:i], v[i+1:]
		} else {
			elem, v = v, nil
		}
		elem = bytes.Trim(elem, " \t")
		if len(elem) > 0 {
			fn(elem)
		}
	}
}
