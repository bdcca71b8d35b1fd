package lockedbuf

import (
	"strings"
	"sync"
	"testing"
)

// Writers and a reader race on one Buffer (the race detector watches), and
// every byte written is there at the end, in whole writes.
func TestConcurrentWritesAreAllKeptWhileReaderReads(t *testing.T) {
	var b Buffer
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 100 {
				b.Write([]byte("line\n"))
			}
		})
	}
	wg.Go(func() {
		for range 100 {
			_ = b.String()
		}
	})
	wg.Wait()
	if got := strings.Count(b.String(), "line\n"); got != 400 || len(b.String()) != 400*len("line\n") {
		t.Fatalf("%d whole lines in %d bytes, want 400 in %d", got, len(b.String()), 400*len("line\n"))
	}
}
