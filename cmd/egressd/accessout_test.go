package main

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// The access log is buffered by log.flush_interval (issue 18): a line
// waits in the buffer, and closing the output at exit writes it out, so
// a clean shutdown loses nothing. With 0s every line is written at once.
func TestAccessLogBufferIsFlushedOnCloseAndOffAtZero(t *testing.T) {
	for _, tc := range []struct {
		name          string
		flush         time.Duration
		beforeClose   string
		afterCloseLen int
	}{
		{name: "buffered", flush: time.Hour, beforeClose: "", afterCloseLen: 5},
		{name: "unbuffered", flush: 0, beforeClose: "line\n", afterCloseLen: 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "access.log")
			w, closeOut, err := openAccessOutput(path, tc.flush, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := w.Write([]byte("line\n")); err != nil {
				t.Fatal(err)
			}
			if b, _ := os.ReadFile(path); string(b) != tc.beforeClose {
				t.Errorf("file before close = %q, want %q", b, tc.beforeClose)
			}
			closeOut()
			if b, _ := os.ReadFile(path); len(b) != tc.afterCloseLen {
				t.Errorf("file after close = %q, want the one line", b)
			}
		})
	}
}
