package acl

import (
	"crypto/sha256"
	"crypto/subtle"
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
// bounded twice: a wrong password is remembered for failureTTL (a
// misconfigured client retrying the same password costs one bcrypt per
// minute, not one per request), and each tenant runs at most
// authSlotsPerTenant bcrypt checks at once. Unknown user names are
// rejected without bcrypt at all.
const (
	failureTTL         = time.Minute
	maxFailuresPerUser = 256
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

// verify checks password for u, consulting and filling the cache.
func (p *Policy) verify(u *user, password string) bool {
	if len(password) > maxPasswordLen {
		return false
	}
	d := p.digest(password)
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

	slots := p.tenants[u.tenant].authSlots
	slots <- struct{}{}
	ok := bcrypt.CompareHashAndPassword(u.hash, []byte(password)) == nil
	<-slots

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
