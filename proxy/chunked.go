package proxy

import (
	"bufio"
	"bytes"
	"errors"
	"io"
)

// errBadChunk is chunked framing that RFC 9112 §7.1 does not allow. Parsers
// that repair it differently (a bare LF, an oversized or signed size, data
// longer than its size) are how a body smuggles a second request, so it is
// refused, never repaired.
var errBadChunk = errors.New("proxy: invalid chunked framing")

// maxChunkLine bounds a chunk-size line with its extensions.
const maxChunkLine = 4 << 10

// lineSource is what the chunked parser reads from: a *bufio.Reader on a
// connection, or bytesSource over bytes already buffered.
type lineSource interface {
	io.Reader
	ReadSlice(delim byte) ([]byte, error)
	Buffered() int
}

// chunkedReader decodes a chunked body up to and including the last
// chunk's size line; the trailer section is left to the caller. It is the
// one chunked parser: forward checks the bytes buffered with the head with
// it before anything goes upstream, and bodyCopy decodes with it.
type chunkedReader struct {
	src  lineSource
	left int64 // data bytes left in the current chunk
	crlf bool  // the current chunk's data ended; its CRLF is next
	done bool
}

func newChunkedReader(src lineSource) *chunkedReader { return &chunkedReader{src: src} }

func (cr *chunkedReader) Read(p []byte) (int, error) {
	for cr.left == 0 {
		if cr.done {
			return 0, io.EOF
		}
		if cr.crlf {
			if err := cr.readCRLF(); err != nil {
				return 0, err
			}
			cr.crlf = false
		}
		n, err := cr.readSize()
		if err != nil {
			return 0, err
		}
		if n == 0 {
			cr.done = true
			return 0, io.EOF
		}
		cr.left = n
	}
	if int64(len(p)) > cr.left {
		p = p[:cr.left]
	}
	n, err := cr.src.Read(p)
	cr.left -= int64(n)
	if cr.left == 0 {
		cr.crlf = true
		// Take the CRLF now when it is here, so the caller sees an empty
		// buffer and flushes this chunk instead of waiting for the next.
		if err == nil && cr.src.Buffered() >= 2 {
			err = cr.readCRLF()
			cr.crlf = err != nil
		}
	}
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

func (cr *chunkedReader) readCRLF() error {
	line, err := cr.src.ReadSlice('\n')
	if err == bufio.ErrBufferFull || !bytes.HasPrefix([]byte("\r\n"), line) {
		return errBadChunk // data longer than its size, seen from its first extra byte
	}
	return eofIsUnexpected(err)
}

// readSize parses chunk-size [ chunk-ext ] CRLF. Sizes are at most 15 hex
// digits, so they never overflow an int64 and are never negative.
func (cr *chunkedReader) readSize() (int64, error) {
	line, err := cr.src.ReadSlice('\n')
	if err == bufio.ErrBufferFull || len(line) > maxChunkLine {
		return 0, errBadChunk
	}
	if err != nil {
		return 0, eofIsUnexpected(err)
	}
	if len(line) < 2 || line[len(line)-2] != '\r' {
		return 0, errBadChunk // a bare LF
	}
	line = line[:len(line)-2]
	var n int64
	i := 0
	for ; i < len(line) && i < 16; i++ {
		d, ok := hexDigit(line[i])
		if !ok {
			break
		}
		n = n<<4 | int64(d)
	}
	if i == 0 || i > 15 {
		return 0, errBadChunk
	}
	if !validChunkExt(line[i:]) {
		return 0, errBadChunk
	}
	return n, nil
}

// validChunkExt accepts what may follow the size: nothing, or BWS and
// ";"-led extensions of visible characters, spaces and tabs. Extensions
// are dropped when the body is re-chunked for the upstream.
func validChunkExt(ext []byte) bool {
	ext = bytes.TrimLeft(ext, " \t")
	if len(ext) == 0 {
		return true
	}
	if ext[0] != ';' {
		return false
	}
	for _, c := range ext {
		if c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

func hexDigit(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

func eofIsUnexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// checkBufferedChunks parses the chunked body bytes that arrived with the
// head, so a body that is already known to be invalid is answered with 400
// before the request goes upstream. Bytes that end mid-body are fine: the
// rest is checked as it is relayed.
func checkBufferedChunks(br *bufio.Reader) error {
	buf, _ := br.Peek(br.Buffered())
	cr := newChunkedReader(&bytesSource{b: buf})
	var sink [512]byte
	for {
		_, err := cr.Read(sink[:])
		switch {
		case err == nil:
		case err == io.EOF || err == io.ErrUnexpectedEOF:
			return nil
		default:
			return err
		}
	}
}

// bytesSource is a lineSource over a byte slice; ReadSlice without the
// delimiter returns the rest with io.EOF, like bufio at the end of its input.
type bytesSource struct{ b []byte }

func (s *bytesSource) Read(p []byte) (int, error) {
	if len(s.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p, s.b)
	s.b = s.b[n:]
	return n, nil
}

func (s *bytesSource) Buffered() int { return len(s.b) }

func (s *bytesSource) ReadSlice(delim byte) ([]byte, error) {
	i := bytes.IndexByte(s.b, delim)
	if i < 0 {
		if len(s.b) > maxChunkLine {
			return nil, bufio.ErrBufferFull
		}
		rest := s.b
		s.b = nil
		return rest, io.EOF
	}
	line := s.b[:i+1]
	s.b = s.b[i+1:]
	return line, nil
}
