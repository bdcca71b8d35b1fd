package load

import (
	"hash/crc32"
	"strings"
	"testing"
)

func TestParseStatCPU(t *testing.T) {
	tests := []struct {
		name    string
		stat    string
		user    uint64
		sys     uint64
		wantErr string
	}{
		{
			name: "plain",
			stat: "1234 (egressd) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 4 0",
			user: 250, sys: 75,
		},
		{
			name: "command with spaces and parentheses",
			stat: "99 (a) (b c) R 1 99 99 0 -1 0 0 0 0 0 7 3 0 0 20 0 1 0",
			user: 7, sys: 3,
		},
		{name: "no command", stat: "99 a R 1", wantErr: "no ')' after the command name"},
		{name: "truncated", stat: "99 (x) R 1 2 3", wantErr: "4 fields after the command name, want at least 13"},
		{name: "bad utime", stat: "9 (x) R 1 1 1 0 -1 0 0 0 0 0 x 3 0", wantErr: `utime: strconv.ParseUint: parsing "x": invalid syntax`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			user, sys, err := parseStatCPU([]byte(tc.stat))
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || user != tc.user || sys != tc.sys {
				t.Fatalf("got user %d sys %d, %v; want %d and %d", user, sys, err, tc.user, tc.sys)
			}
		})
	}
}

func TestParseStatusRSS(t *testing.T) {
	tests := []struct {
		name    string
		status  string
		want    int64
		wantErr string
	}{
		{name: "present", status: "Name:\tx\nVmPeak:\t 9 kB\nVmRSS:\t   20436 kB\nThreads: 4\n", want: 20436},
		{name: "missing", status: "Name:\tkthreadd\n", wantErr: "no VmRSS line (a zombie or kernel thread?)"},
		{name: "odd unit", status: "VmRSS:\t12 MB\n", wantErr: `VmRSS line "\t12 MB": want "<n> kB"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseStatusRSS([]byte(tc.status))
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %d, %v; want %d", got, err, tc.want)
			}
		})
	}
}

// TestReadProcSelf reads a real /proc entry: this process has RSS.
func TestReadProcSelf(t *testing.T) {
	s, err := readProc("self")
	if err != nil {
		t.Fatal(err)
	}
	if s.rssKiB <= 0 {
		t.Errorf("rss %d KiB, want positive", s.rssKiB)
	}
	if _, err := readProc("0"); err == nil || !strings.Contains(err.Error(), "read /proc/0/stat") {
		t.Errorf("readProc(0) err = %v, want a read error naming the file", err)
	}
}

func TestExpectedChecksumDetectsShift(t *testing.T) {
	// The block repeats, so a body that skipped a whole block would be the
	// only undetectable corruption; a one-byte shift must be caught.
	var shifted strings.Builder
	_, _ = writePayload(&shifted, 2*blockLen+1)
	h := ExpectedChecksum(2 * blockLen)
	if crc := crcOf([]byte(shifted.String()[1:])); crc == h {
		t.Error("a stream shifted by one byte has the expected checksum")
	}
	if crc := crcOf([]byte(shifted.String()[:2*blockLen])); crc != h {
		t.Errorf("checksum of the stream %08x, want %08x", crc, h)
	}
}

func crcOf(b []byte) uint32 {
	h := crc32.New(castagnoli)
	_, _ = h.Write(b)
	return h.Sum32()
}
