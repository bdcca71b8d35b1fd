package proxy

import (
	"bufio"
	"bytes"

	"golang.org/x/net/http/httpguts"
)

// maxTrailerBytes bounds the trailer section of one chunked message; it is
// read line by line and never kept, so the bound is about time, not memory.
const maxTrailerBytes = 8 << 10

// forwardTrailer reads the trailer section after the last chunk (RFC 9112
// §7.1.2) and writes its end-to-end fields to dst, then the empty line
// that ends the message. gRPC-web and some upload APIs carry checksums and
// status there (issue 17), so dropping them silently breaks the exchange.
//
// A line is checked as strictly as a head line (no obs-fold, a token name,
// no control bytes), since it is forwarded as bytes. Fields a trailer must
// not carry (RFC 9110 §6.5.1: framing, routing, authentication, content
// metadata; httpguts.ValidTrailerHeader's list), hop-by-hop fields and
// fields the head's Connection listed are dropped: Proxy-Authorization in
// a trailer would otherwise reach the origin.
func forwardTrailer(br *bufio.Reader, dst *bufio.Writer, connTokens [][]byte) error {
	for total := 0; ; {
		line, err := br.ReadSlice('\n')
		total += len(line)
		if err != nil || total > maxTrailerBytes {
			return errChunkTrailer
		}
		l := line[:len(line)-1]
		if n := len(l); n > 0 && l[n-1] == '\r' {
			l = l[:n-1]
		}
		if len(l) == 0 {
			dst.WriteString("\r\n")
			return nil
		}
		if l[0] == ' ' || l[0] == '\t' {
			return errChunkTrailer
		}
		colon := bytes.IndexByte(l, ':')
		if colon <= 0 || !isToken(l[:colon]) {
			return errChunkTrailer
		}
		name, value := l[:colon], bytes.Trim(l[colon+1:], " \t")
		if !validValue(value) {
			return errChunkTrailer
		}
		if !trailerForwarded(name, connTokens) {
			continue
		}
		dst.Write(name)
		dst.WriteString(": ")
		dst.Write(value)
		dst.WriteString("\r\n")
	}
}

func trailerForwarded(name []byte, connTokens [][]byte) bool {
	if hopByHop(name) || !httpguts.ValidTrailerHeader(string(name)) {
		return false
	}
	for _, t := range connTokens {
		if bytes.EqualFold(name, t) {
			return false
		}
	}
	return true
}

// writeTrailerAnnouncement passes the Trailer field (RFC 9110 §6.6.2) of a
// message that stays chunked, so the recipient knows which trailer fields
// to expect; writeFields drops it with the framing fields because a
// message re-framed by length or close carries no trailers.
func writeTrailerAnnouncement(bw *bufio.Writer, h *head) (n int) {
	for i := range h.fields {
		if asciiEqualFold(h.name(i), "Trailer") {
			bw.WriteString("Trailer: ")
			bw.Write(h.value(i))
			bw.WriteString("\r\n")
			n += len("Trailer: \r\n") + len(h.value(i))
		}
	}
	return n
}
