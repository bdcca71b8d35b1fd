package proxy

import (
	"testing"
	"time"
)

// TestSquidFieldEscaping: no byte a client controls can end a Squid
// field or line; '%' is escaped where the field is not a URL, so the
// escaping reverses unambiguously.
func TestSquidFieldEscaping(t *testing.T) {
	tests := []struct {
		name string
		in   string
		pct  bool
		want string
	}{
		{name: "empty is a dash", in: "", want: "-"},
		{name: "plain", in: "alice", pct: true, want: "alice"},
		{name: "newline cannot start a line", in: "bob\n1700000000.000 0 10.0.0.1 TCP_MISS/200", pct: true, want: "bob%0A1700000000.000%200%2010.0.0.1%20TCP_MISS/200"},
		{name: "tab, CR, NUL, DEL", in: "a\tb\rc\x00d\x7f", pct: true, want: "a%09b%0Dc%00d%7F"},
		{name: "non-ASCII bytes", in: "zoë", pct: true, want: "zo%C3%AB"},
		{name: "percent in a user", in: "50%off", pct: true, want: "50%25off"},
		{name: "percent in a URL stays", in: "http://h/a%2Fb", want: "http://h/a%2Fb"},
		{name: "space in a URL", in: "http://h/a b", want: "http://h/a%20b"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := string(appendSquidField(nil, tc.in, tc.pct)); got != tc.want {
				t.Fatalf("appendSquidField(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

// TestHeaderLogSamplerBoundsAndCounts: a flood of refused PROXY headers
// writes a burst of lines, then one a second, and the next line written
// says how many were suppressed.
func TestHeaderLogSamplerBoundsAndCounts(t *testing.T) {
	l := newHeaderLogSampler()
	now := time.Unix(1_700_000_000, 0)
	logged := 0
	for range 100 {
		if ok, _ := l.allowAt(now); ok {
			logged++
		}
	}
	if logged != 20 {
		t.Fatalf("%d of 100 simultaneous refusals logged, want the burst of 20", logged)
	}
	ok, suppressed := l.allowAt(now.Add(1100 * time.Millisecond))
	if !ok || suppressed != 80 {
		t.Fatalf("a second later: logged %v, suppressed %d; want true and 80", ok, suppressed)
	}
	if ok, _ := l.allowAt(now.Add(1100 * time.Millisecond)); ok {
		t.Fatal("a second line in the same instant was not suppressed")
	}
}
