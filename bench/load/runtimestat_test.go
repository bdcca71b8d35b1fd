package load

import (
	"strings"
	"testing"
)

func TestParseRuntimeMetrics(t *testing.T) {
	text := `# HELP go_goroutines Number of goroutines that currently exist.
# TYPE go_goroutines gauge
go_goroutines 8006
go_memstats_stack_inuse_bytes 1.6908288e+07
go_memstats_heap_inuse_bytes 1.9513344e+07
go_memstats_heap_inuse_bytes_total{x="y"} 5
`
	s, err := parseRuntimeMetrics(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	if s.goroutines != 8006 || s.stackBytes != 16908288 || s.heapBytes != 19513344 {
		t.Fatalf("got %+v", s)
	}
	if _, err := parseRuntimeMetrics(strings.NewReader("go_goroutines 3\n")); err == nil || !strings.Contains(err.Error(), "lack") {
		t.Fatalf("a missing gauge: err = %v, want one naming it", err)
	}
	if _, err := parseRuntimeMetrics(strings.NewReader("go_goroutines x\n")); err == nil {
		t.Fatal("a bad value parsed")
	}
}
