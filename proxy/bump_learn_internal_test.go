package proxy

import (
	"strconv"
	"testing"
	"time"

	"github.com/egressd/egressd/acl"
)

func TestSpliceLearnerCountsWithinTTLAndExpires(t *testing.T) {
	var l spliceLearner
	learn := acl.LearnSplice{After: 2, TTL: time.Hour}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

	if got, _ := l.refused("a", "h.test", learn, t0); got {
		t.Fatal("learned after 1 refusal, want 2")
	}
	// The first refusal is older than the TTL when the second comes: it
	// no longer counts.
	if got, _ := l.refused("a", "h.test", learn, t0.Add(61*time.Minute)); got {
		t.Fatal("a refusal older than the TTL still counted")
	}
	t1 := t0.Add(62 * time.Minute)
	got, until := l.refused("a", "h.test", learn, t1)
	if !got || !until.Equal(t1.Add(time.Hour)) {
		t.Fatalf("second refusal in the window: learned %v until %v, want true until %v", got, until, t1.Add(time.Hour))
	}
	if again, _ := l.refused("a", "h.test", learn, t1); again {
		t.Error("a refusal in flight after learning reported learning again")
	}
	if !l.splices("a", "h.test", learn, t1.Add(59*time.Minute)) {
		t.Error("not spliced within the TTL")
	}
	if l.splices("b", "h.test", learn, t1) {
		t.Error("another tenant's host was spliced")
	}
	if l.splices("a", "h.test", acl.LearnSplice{}, t1) {
		t.Error("spliced although learning is off now (a reload turned it off)")
	}
	if l.splices("a", "h.test", learn, t1.Add(61*time.Minute)) {
		t.Error("still spliced after the TTL")
	}
	if len(l.hosts) != 0 {
		t.Errorf("%d entries left after expiry, want 0", len(l.hosts))
	}
}

func TestSpliceLearnerIsBounded(t *testing.T) {
	var l spliceLearner
	learn := acl.LearnSplice{After: 2, TTL: time.Hour}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range maxLearnedHosts + 100 {
		l.refused("a", strconv.Itoa(i)+".test", learn, t0)
	}
	if len(l.hosts) != maxLearnedHosts {
		t.Fatalf("%d entries, want the bound %d", len(l.hosts), maxLearnedHosts)
	}
	// Once old entries expire there is room again.
	l.refused("a", "new.test", learn, t0.Add(acl.MaxLearnTTL+time.Minute))
	if _, ok := l.hosts[learnKey{"a", "new.test"}]; !ok || len(l.hosts) != 1 {
		t.Errorf("after expiry: %d entries, new host counted %v; want 1 and true", len(l.hosts), ok)
	}
}
