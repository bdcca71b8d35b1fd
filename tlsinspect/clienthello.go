package tlsinspect

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"

	"golang.org/x/crypto/cryptobyte"
)

// ClientHello peek errors. A timeout or connection error from the reader
// is returned wrapped instead, so callers can tell "client is silent"
// (a server-speaks-first protocol, to be treated per non_tls) apart.
var (
	// ErrNotTLS means the first bytes are not a TLS handshake record.
	ErrNotTLS = errors.New("tlsinspect: not a TLS handshake")
	// ErrMalformedHello means the bytes start like TLS but do not form a
	// well-formed ClientHello.
	ErrMalformedHello = errors.New("tlsinspect: malformed ClientHello")
	// ErrHelloTooLarge means the ClientHello does not fit in the peek limit.
	ErrHelloTooLarge = errors.New("tlsinspect: ClientHello larger than the peek limit")
)

const (
	recordHeaderLen      = 5
	maxPlaintextRecord   = 1 << 14 // RFC 8446 §5.1
	recordTypeHandshake  = 0x16
	handshakeClientHello = 1
	extServerName        = 0
	extALPN              = 16
	sniHostName          = 0
)

// MaxPeek is the most PeekClientHello looks ahead: one full-size TLS
// record and its header. ClientHellos seen in practice are under 2 KiB
// (about 1.8 KiB with a post-quantum key share); one spread over several
// records still fits as long as the records' total stays within MaxPeek.
// Wrap the connection in bufio.NewReaderSize(conn, MaxPeek) so the limit
// is not the default 4 KiB buffer.
const MaxPeek = maxPlaintextRecord + recordHeaderLen

// ClientHelloInfo is what policy needs from a ClientHello.
type ClientHelloInfo struct {
	// SNI is the host_name server name, lower-cased, or "" when absent.
	SNI string
	// ALPN lists the offered application protocols in client order.
	ALPN []string
}

// PeekClientHello parses the TLS ClientHello at the head of r without
// consuming it: it only calls r.Peek, so every byte is still buffered for
// a spliced tunnel or for crypto/tls afterwards. It blocks until the whole
// ClientHello has arrived (it may span several records and TCP segments),
// so callers set a read deadline first. It looks ahead at most
// min(r.Size(), MaxPeek) bytes.
//
// Results: ErrNotTLS when the first record is not a TLS handshake; a
// ClientHelloInfo with SNI "" for TLS without server_name;
// ErrMalformedHello or ErrHelloTooLarge for garbled or oversized input;
// io.ErrUnexpectedEOF (wrapped) when the peer stops mid-hello.
func PeekClientHello(r *bufio.Reader) (ClientHelloInfo, error) {
	limit := min(r.Size(), MaxPeek)
	// One byte first: a non-TLS client that sends a short line and waits
	// for an answer is recognised without waiting for five bytes.
	first, err := peek(r, 1, limit)
	if err != nil {
		return ClientHelloInfo{}, err
	}
	if first[0] != recordTypeHandshake {
		return ClientHelloInfo{}, ErrNotTLS
	}
	var hs []byte // handshake bytes reassembled across records
	for off := 0; ; {
		buf, err := peek(r, off+recordHeaderLen, limit)
		if err != nil {
			return ClientHelloInfo{}, err
		}
		hdr := buf[off:]
		// Record versions are 3.0 to 3.4; anything else after 0x16 is
		// another protocol that happens to start with that byte.
		if hdr[0] != recordTypeHandshake || hdr[1] != 3 || hdr[2] > 4 {
			if off == 0 {
				return ClientHelloInfo{}, ErrNotTLS
			}
			return ClientHelloInfo{}, fmt.Errorf("%w: record type %#x version %#x%02x inside the ClientHello",
				ErrMalformedHello, hdr[0], hdr[1], hdr[2])
		}
		n := int(hdr[3])<<8 | int(hdr[4])
		if n == 0 || n > maxPlaintextRecord {
			return ClientHelloInfo{}, fmt.Errorf("%w: record length %d", ErrMalformedHello, n)
		}
		end := off + recordHeaderLen + n
		if buf, err = peek(r, end, limit); err != nil {
			return ClientHelloInfo{}, err
		}
		hs = append(hs, buf[off+recordHeaderLen:end]...)
		off = end
		if len(hs) < 4 {
			continue
		}
		if hs[0] != handshakeClientHello {
			return ClientHelloInfo{}, fmt.Errorf("%w: handshake type %d is not ClientHello", ErrMalformedHello, hs[0])
		}
		msgLen := int(hs[1])<<16 | int(hs[2])<<8 | int(hs[3])
		if 4+msgLen > limit {
			return ClientHelloInfo{}, fmt.Errorf("%w: %d bytes", ErrHelloTooLarge, msgLen)
		}
		if len(hs) >= 4+msgLen {
			return parseClientHello(hs[4 : 4+msgLen])
		}
	}
}

// peek returns the first n buffered bytes, mapping a short read to the
// error a caller can act on.
func peek(r *bufio.Reader, n, limit int) ([]byte, error) {
	if n > limit {
		return nil, fmt.Errorf("%w: need %d bytes, limit %d", ErrHelloTooLarge, n, limit)
	}
	b, err := r.Peek(n)
	if err == nil {
		return b, nil
	}
	if errors.Is(err, io.EOF) && len(b) > 0 {
		err = io.ErrUnexpectedEOF
	}
	return nil, fmt.Errorf("peek ClientHello: %w", err)
}

// parseClientHello reads the body of a ClientHello (RFC 8446 §4.1.2,
// RFC 5246 §7.4.1.2) and extracts server_name (RFC 6066 §3) and ALPN
// (RFC 7301 §3.1).
func parseClientHello(body []byte) (ClientHelloInfo, error) {
	bad := func(what string) (ClientHelloInfo, error) {
		return ClientHelloInfo{}, fmt.Errorf("%w: %s", ErrMalformedHello, what)
	}
	s := cryptobyte.String(body)
	var (
		version                        uint16
		random                         []byte
		sessionID, suites, compression cryptobyte.String
	)
	if !s.ReadUint16(&version) || !s.ReadBytes(&random, 32) ||
		!s.ReadUint8LengthPrefixed(&sessionID) || len(sessionID) > 32 ||
		!s.ReadUint16LengthPrefixed(&suites) || len(suites) == 0 || len(suites)%2 != 0 ||
		!s.ReadUint8LengthPrefixed(&compression) || len(compression) == 0 {
		return bad("bad fixed fields")
	}
	var info ClientHelloInfo
	if s.Empty() {
		return info, nil // Pre-extension (SSL 3.0 era) hello: no SNI.
	}
	var exts cryptobyte.String
	if !s.ReadUint16LengthPrefixed(&exts) || !s.Empty() {
		return bad("bad extensions block")
	}
	seen := make(map[uint16]bool)
	for !exts.Empty() {
		var typ uint16
		var data cryptobyte.String
		if !exts.ReadUint16(&typ) || !exts.ReadUint16LengthPrefixed(&data) {
			return bad("bad extension")
		}
		// RFC 8446 §4.2: at most one extension of each type. Two SNIs
		// would let a client show policy one name and the server another.
		if seen[typ] {
			return bad(fmt.Sprintf("duplicate extension %d", typ))
		}
		seen[typ] = true
		var err error
		switch typ {
		case extServerName:
			info.SNI, err = parseSNI(data)
		case extALPN:
			info.ALPN, err = parseALPN(data)
		}
		if err != nil {
			return ClientHelloInfo{}, err
		}
	}
	return info, nil
}

func parseSNI(data cryptobyte.String) (string, error) {
	var list cryptobyte.String
	if !data.ReadUint16LengthPrefixed(&list) || !data.Empty() || list.Empty() {
		return "", fmt.Errorf("%w: bad server_name list", ErrMalformedHello)
	}
	var host string
	for !list.Empty() {
		var typ uint8
		var name cryptobyte.String
		if !list.ReadUint8(&typ) || !list.ReadUint16LengthPrefixed(&name) {
			return "", fmt.Errorf("%w: bad server_name entry", ErrMalformedHello)
		}
		if typ != sniHostName {
			continue // RFC 6066 §3: unknown name types are ignored.
		}
		if host != "" {
			return "", fmt.Errorf("%w: more than one host_name", ErrMalformedHello)
		}
		// RFC 6066 §3: ASCII, no trailing dot. The name feeds policy and
		// logs, so it must be a plausible DNS name and nothing else.
		h := strings.ToLower(string(name))
		if strings.HasSuffix(h, ".") {
			return "", fmt.Errorf("%w: server_name has a trailing dot", ErrMalformedHello)
		}
		if _, err := normalizeHost(h); err != nil || strings.ContainsAny(h, "[]:") {
			return "", fmt.Errorf("%w: server_name %q is not a host name", ErrMalformedHello, h)
		}
		host = h
	}
	return host, nil
}

func parseALPN(data cryptobyte.String) ([]string, error) {
	var list cryptobyte.String
	if !data.ReadUint16LengthPrefixed(&list) || !data.Empty() || list.Empty() {
		return nil, fmt.Errorf("%w: bad ALPN list", ErrMalformedHello)
	}
	var protos []string
	for !list.Empty() {
		var p cryptobyte.String
		if !list.ReadUint8LengthPrefixed(&p) || p.Empty() {
			return nil, fmt.Errorf("%w: bad ALPN protocol", ErrMalformedHello)
		}
		protos = append(protos, string(p)) // string() copies out of the bufio buffer.
	}
	return protos, nil
}
