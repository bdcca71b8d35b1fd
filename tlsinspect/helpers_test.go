package tlsinspect

import (
	"encoding/pem"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/egressd/egressd/internal/testpki"
)

// t0 is the fixed "now" of tests that control the clock.
var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// issue is testpki.MustIssue with a default validity that covers both
// the fixed test clock t0 and the wall clock, as some tests go through
// Load (time.Now) and others through t0.
func issue(t testing.TB, s testpki.Spec) *testpki.Cert {
	t.Helper()
	if s.NotBefore.IsZero() {
		s.NotBefore = minTime(t0, time.Now()).Add(-24 * time.Hour)
	}
	if s.NotAfter.IsZero() {
		s.NotAfter = maxTime(t0, time.Now()).Add(365 * 24 * time.Hour)
	}
	return testpki.MustIssue(t, s)
}

func writePEM(t testing.TB, dir, name string, blocks ...*pem.Block) string {
	t.Helper()
	return testpki.WritePEM(t, filepath.Join(dir, name), blocks...)
}

// caFiles writes c as ca.crt/ca.key in dir and returns a Config using them.
func caFiles(t testing.TB, dir string, c *testpki.Cert) Config {
	t.Helper()
	return Config{
		CACert: writePEM(t, dir, "ca.crt", c.CertBlock()),
		CAKey:  writePEM(t, dir, "ca.key", testpki.KeyBlock(t, c.Key)),
	}
}

// newInspector builds an Inspector from a fresh P-256 CA with a clock the
// test controls.
func newInspector(t testing.TB, mutate func(*Config)) (*Inspector, *fakeClock, *testpki.Cert, *countingObserver) {
	t.Helper()
	ca := issue(t, testpki.Spec{CommonName: "Test Inspection CA", IsCA: true, NotBefore: t0.Add(-24 * time.Hour), NotAfter: t0.Add(365 * 24 * time.Hour)})
	cfg := caFiles(t, t.TempDir(), ca)
	if mutate != nil {
		mutate(&cfg)
	}
	clk := &fakeClock{now: t0}
	obs := &countingObserver{}
	insp, err := load(cfg, obs, clk.Now)
	if err != nil {
		t.Fatal(err)
	}
	return insp, clk, ca, obs
}

type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

type countingObserver struct {
	mints, hits, misses atomic.Int64
	size                atomic.Int64
}

func (o *countingObserver) MintDuration(time.Duration) { o.mints.Add(1) }
func (o *countingObserver) CacheHit()                  { o.hits.Add(1) }
func (o *countingObserver) CacheMiss()                 { o.misses.Add(1) }
func (o *countingObserver) CacheSize(n int)            { o.size.Store(int64(n)) }

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
