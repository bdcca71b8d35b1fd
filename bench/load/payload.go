package load

import (
	"hash/crc32"
	"io"
)

// blockLen is prime so that a body shifted by any offset smaller than the
// block no longer matches its checksum; a repeating block keeps the origin
// cheap (the origin shares a core with the load generator).
const blockLen = 65521

// SmallSize is the size of the /small object: a typical small API response.
const SmallSize = 512

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// payloadBlock is computed once; it is read-only afterwards.
var payloadBlock = func() []byte {
	b := make([]byte, blockLen)
	// xorshift64*: deterministic, fast, and good enough to defeat any
	// compression or pattern shortcut a proxy might take.
	x := uint64(0x9E3779B97F4A7C15)
	for i := range b {
		x ^= x >> 12
		x ^= x << 25
		x ^= x >> 27
		b[i] = byte((x * 0x2545F4914F6CDD1D) >> 56)
	}
	return b
}()

// writePayload writes the first n bytes of the deterministic stream to w.
func writePayload(w io.Writer, n int64) (int64, error) {
	var written int64
	for written < n {
		chunk := payloadBlock
		if rem := n - written; rem < int64(len(chunk)) {
			chunk = chunk[:rem]
		}
		k, err := w.Write(chunk)
		written += int64(k)
		if err != nil {
			return written, err
		}
	}
	return written, nil
}

// ExpectedChecksum is the CRC-32C of the first n bytes of the stream. A run
// computes it once per size, before the clock starts.
func ExpectedChecksum(n int64) uint32 {
	h := crc32.New(castagnoli)
	_, _ = writePayload(h, n) // hash.Hash never returns an error
	return h.Sum32()
}
