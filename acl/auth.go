package acl

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// Credential cache. bcrypt costs ~50 ms per check, far too much per
// request for a keep-alive client, so a Policy remembers, per user, the
// salted SHA-256 of the last password bcrypt accepted and compares later
// attempts against it in constant time. The cache lives and dies with the
// Policy, so a reload that rotates a hash starts clean.
//
// Failures cost the attacker nothing and the proxy 50 ms each, so they are
// bounded three ways: a wrong password is remembered for failureTTL (a
// misconfigured client retrying the same password costs one bcrypt per
// minute, not one per request); each tenant runs at most
// authSlotsPerTenant bcrypt checks at once and a check waits at most
// authSlotWait for a slot (then the answer is 407); and one caller (a
// LinkID, or a source address without one) that failed
// maxFailuresPerCaller times in failureWindow gets no more bcrypt until the
// window ends, so a crowd of guessers cannot queue a real login behind them.
//
// Unknown user names, and users of another tenant, are checked against a
// decoy hash of the same cost, so the time an answer takes does not tell
// which names exist.
const (
	failureTTL           = time.Minute
	maxFailuresPerUser   = 256
	authSlotWait         = 2 * time.Second
	failureWindow        = time.Minute
	maxFailuresPerCaller = 20
	maxTrackedCallers    = 4096
	// maxPasswordLen: bcrypt only reads 72 bytes, so a longer password
	// would be accepted on its prefix; reject it instead of pretending.
	maxPasswordLen = 72
)

type user struct {
	tenant int32
	hash   []byte   // bcrypt hash; nil when plain
	plain  bool     // password_file held the password itself
	digest [32]byte // plain: salted digest of the password

	mu       sync.Mutex
	ok       [32]byte // salted digest of the last password bcrypt accepted
	hasOK    bool
	failures map[[32]byte]time.Time // salted digest -> expiry
}

// digest is a salted SHA-256 of s. Short inputs hash from a stack buffer
// so the cached path of Decide does not allocate.
func (p *Policy) digest(s string) [32]byte {
	var buf [128]byte
	if len(p.salt)+len(s) <= len(buf) {
		n := copy(buf[:], p.salt[:])
		n += copy(buf[n:], s)
		return sha256.Sum256(buf[:n])
	}
	h := sha256.New()
	h.Write(p.salt[:])
	h.Write([]byte(s))
	var out [32]byte
	h.Sum(out[:0])
	return out
}

// verify checks password for u, consulting and filling the cache. key is
// what the cache remembers the attempt by (the password for a real user;
// name and password for the decoy, so one name's failure does not make
// another's cheap); slots bounds the bcrypt runs; caller is who asks.
func (p *Policy) verify(u *user, key, password string, slots chan struct{}, caller callerKey) bool {
	if len(password) > maxPasswordLen {
		return false
	}
	d := p.digest(key)
	if u.plain {
		return subtle.ConstantTimeCompare(d[:], u.digest[:]) == 1
	}
	now := p.now()
	u.mu.Lock()
	if u.hasOK && subtle.ConstantTimeCompare(d[:], u.ok[:]) == 1 {
		u.mu.Unlock()
		return true
	}
	if exp, seen := u.failures[d]; seen && now.Before(exp) {
		u.mu.Unlock()
		return false
	}
	u.mu.Unlock()

	if !p.callers.allow(caller, now) {
		return false
	}
	t := time.NewTimer(authSlotWait)
	select {
	case slots <- struct{}{}:
		t.Stop()
	case <-t.C:
		return false // every slot is busy: 407 now beats a login queued for seconds
	}
	p.bcrypts.Add(1)
	ok := bcrypt.CompareHashAndPassword(u.hash, []byte(password)) == nil
	<-slots
	if !ok {
		p.callers.fail(caller, now)
	}

	u.mu.Lock()
	defer u.mu.Unlock()
	if ok {
		u.ok, u.hasOK = d, true
		delete(u.failures, d)
		return true
	}
	if len(u.failures) >= maxFailuresPerUser {
		for k, exp := range u.failures {
			if !now.Before(exp) || len(u.failures) >= maxFailuresPerUser {
				delete(u.failures, k)
			}
		}
	}
	u.failures[d] = now.Add(failureTTL)
	return false
}

// decoyUser is checked when a name is unknown or belongs to another
// tenant. Its hash is random and as costly as the dearest configured one;
// it is made on first use, so policies without bcrypt users never pay.
func (p *Policy) decoyUser() *user {
	p.decoyOnce.Do(func() {
		secret := make([]byte, 32)
		rand.Read(secret)
		if p.decoyCost == 0 {
			p.decoy = &user{tenant: -1, plain: true, digest: p.digest(string(secret))}
			return
		}
		h, err := bcrypt.GenerateFromPassword(secret, p.decoyCost)
		if err != nil {
			h, _ = bcrypt.GenerateFromPassword(secret, bcrypt.DefaultCost)
		}
		p.decoy = &user{tenant: -1, hash: h, failures: map[[32]byte]time.Time{}}
	})
	return p.decoy
}

// failDecoy spends what a wrong password for a real user would, and fails.
func (p *Policy) failDecoy(cred Credentials, slots chan struct{}, caller callerKey) {
	p.verify(p.decoyUser(), cred.User+"\x00"+cred.Password, cred.Password, slots, caller)
}

// callerKey names who is guessing: the LinkID when there is one (every
// pod behind one private endpoint shares it), else the source address.
type callerKey struct {
	linkID    uint32
	hasLinkID bool
	addr      netip.Addr
}

func callerOf(id Identity) callerKey {
	if id.HasLinkID {
		return callerKey{linkID: id.LinkID, hasLinkID: true}
	}
	return callerKey{addr: id.Client.Addr().Unmap()}
}

// callerFailures counts bcrypt failures per caller in fixed windows.
type callerFailures struct {
	mu sync.Mutex
	m  map[callerKey]*failWindow
}

type failWindow struct {
	n     int
	until time.Time
}

func (c *callerFailures) allow(k callerKey, now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	w := c.m[k]
	return w == nil || !now.Before(w.until) || w.n < maxFailuresPerCaller
}

func (c *callerFailures) fail(k callerKey, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[callerKey]*failWindow{}
	}
	w := c.m[k]
	if w == nil || !now.Before(w.until) {
		if len(c.m) >= maxTrackedCallers {
			for key, old := range c.m {
				if !now.Before(old.until) {
					delete(c.m, key)
				}
			}
			if len(c.m) >= maxTrackedCallers {
				return // a flood of callers: the slots still bound the cost
			}
		}
		w = &failWindow{until: now.Add(failureWindow)}
		c.m[k] = w
	}
	w.n++
}
