package tlsinspect

import (
	"sync"
	"testing"
	"time"
)

// TestConcurrentFirstHandshakesMintOnce is the thundering herd: many
// tunnels to one new host must share one signing operation.
func TestConcurrentFirstHandshakesMintOnce(t *testing.T) {
	insp, _, _, obs := newInspector(t, nil)
	const callers = 50
	var (
		wg    sync.WaitGroup
		start = make(chan struct{})
		certs = make([][]byte, callers)
		errs  = make([]error, callers)
	)
	for n := range callers {
		wg.Go(func() {
			<-start
			c, err := insp.Certificate("herd.example")
			errs[n] = err
			if err == nil {
				certs[n] = c.Certificate[0]
			}
		})
	}
	close(start)
	wg.Wait()
	for n := range callers {
		if errs[n] != nil {
			t.Fatalf("caller %d: %v", n, errs[n])
		}
		if string(certs[n]) != string(certs[0]) {
			t.Fatalf("caller %d got a different leaf", n)
		}
	}
	if got := obs.mints.Load(); got != 1 {
		t.Fatalf("%d mints, want 1", got)
	}
	if hits, misses := obs.hits.Load(), obs.misses.Load(); hits+misses != callers {
		t.Fatalf("hits %d + misses %d != %d calls", hits, misses, callers)
	}
	if got := obs.size.Load(); got != 1 {
		t.Fatalf("cache size %d, want 1", got)
	}
}

func TestCacheLRUEviction(t *testing.T) {
	insp, _, _, obs := newInspector(t, func(c *Config) { c.CacheSize = 2 })
	get := func(host string) []byte {
		t.Helper()
		c, err := insp.Certificate(host)
		if err != nil {
			t.Fatal(err)
		}
		return c.Certificate[0]
	}
	a := get("a.example")
	get("b.example")
	if again := get("a.example"); string(again) != string(a) { // a is now most recently used
		t.Fatal("a.example re-minted while cached")
	}
	get("c.example") // evicts b, the least recently used
	if got := obs.size.Load(); got != 2 {
		t.Fatalf("cache size %d after third host, want 2", got)
	}
	mints := obs.mints.Load()
	if again := get("a.example"); string(again) != string(a) {
		t.Fatal("a.example was evicted instead of b.example")
	}
	if obs.mints.Load() != mints {
		t.Fatal("a.example minted again; it should have stayed cached")
	}
	get("b.example")
	if got := obs.mints.Load(); got != mints+1 {
		t.Fatalf("b.example: %d mints, want it re-minted after eviction", got-mints)
	}
	if obs.hits.Load() != 2 {
		t.Fatalf("hits = %d, want 2", obs.hits.Load())
	}
}

func TestCacheExpiry(t *testing.T) {
	insp, clk, _, obs := newInspector(t, func(c *Config) { c.LeafValidity = 4 * time.Hour })
	first, err := insp.Certificate("expiry.example")
	if err != nil {
		t.Fatal(err)
	}
	// Cached for half the remaining lifetime: 2h of the 4h.
	clk.Advance(2*time.Hour - time.Second)
	if c, _ := insp.Certificate("expiry.example"); c != first {
		t.Fatal("leaf replaced before its cache expiry")
	}
	clk.Advance(time.Second)
	second, err := insp.Certificate("expiry.example")
	if err != nil {
		t.Fatal(err)
	}
	if second == first || second.Leaf.SerialNumber.Cmp(first.Leaf.SerialNumber) == 0 {
		t.Fatal("expired cache entry was served instead of a new mint")
	}
	if got, want := second.Leaf.NotAfter, t0.Add(6*time.Hour); !got.Equal(want) {
		t.Fatalf("new leaf NotAfter %v, want %v", got, want)
	}
	if got := obs.mints.Load(); got != 2 {
		t.Fatalf("%d mints, want 2", got)
	}
}

func TestCacheExpiryFollowsClampedLeaf(t *testing.T) {
	// With the CA expiring in 1h, the leaf is clamped and cached 30m only.
	tests := []struct {
		name      string
		notAfter  time.Time
		wantUntil time.Time
	}{
		{name: "full leaf", notAfter: t0.Add(24 * time.Hour), wantUntil: t0.Add(12 * time.Hour)},
		{name: "clamped leaf", notAfter: t0.Add(time.Hour), wantUntil: t0.Add(30 * time.Minute)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := cacheExpiry(t0, tc.notAfter); !got.Equal(tc.wantUntil) {
				t.Fatalf("cacheExpiry = %v, want %v", got, tc.wantUntil)
			}
		})
	}
}
