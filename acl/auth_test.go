package acl

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

func authPolicy(t *testing.T) *Policy {
	t.Helper()
	dir := t.TempDir()
	plainFile := filepath.Join(dir, "plain")
	hashFile := filepath.Join(dir, "hash")
	if err := os.WriteFile(plainFile, []byte("s3cret\r\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(hashFile, []byte(hashOf(t, "from-file")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return compileYAML(t, `
tenants:
  - name: a
    link_ids: [1]
    require_auth: true
    default: allow
    users:
      - {name: alice, bcrypt: "`+hashOf(t, "right")+`"}
      - {name: pat, password_file: `+plainFile+`}
      - {name: hal, password_file: `+hashFile+`}
  - name: b
    link_ids: [2]
    default: allow
    users: [{name: bob, bcrypt: "`+hashOf(t, "bobpw")+`"}]
`)
}

func TestAuth(t *testing.T) {
	p := authPolicy(t)
	tests := []struct {
		name       string
		link       uint32
		cred       Credentials
		wantAct    Action
		wantReason Reason
		wantRule   string
	}{
		{name: "missing", link: 1, wantAct: AuthRequired, wantReason: ReasonAuth, wantRule: "auth"},
		{name: "wrong password", link: 1, cred: Credentials{User: "alice", Password: "wrong", Present: true}, wantAct: AuthRequired, wantReason: ReasonAuth, wantRule: "auth"},
		{name: "right password", link: 1, cred: Credentials{User: "alice", Password: "right", Present: true}, wantAct: Allow, wantReason: ReasonDefault, wantRule: "default"},
		{name: "empty password", link: 1, cred: Credentials{User: "alice", Present: true}, wantAct: AuthRequired, wantReason: ReasonAuth, wantRule: "auth"},
		{name: "unknown user", link: 1, cred: Credentials{User: "eve", Password: "right", Present: true}, wantAct: AuthRequired, wantReason: ReasonAuth, wantRule: "auth"},
		{name: "other tenant's user is answered like an unknown one, never switched", link: 1, cred: Credentials{User: "bob", Password: "bobpw", Present: true}, wantAct: AuthRequired, wantReason: ReasonAuth, wantRule: "auth"},
		{name: "plain password file, CRLF trimmed", link: 1, cred: Credentials{User: "pat", Password: "s3cret", Present: true}, wantAct: Allow, wantReason: ReasonDefault, wantRule: "default"},
		{name: "plain password file wrong", link: 1, cred: Credentials{User: "pat", Password: "s3cret\r", Present: true}, wantAct: AuthRequired, wantReason: ReasonAuth, wantRule: "auth"},
		{name: "hash in password file", link: 1, cred: Credentials{User: "hal", Password: "from-file", Present: true}, wantAct: Allow, wantReason: ReasonDefault, wantRule: "default"},
		{name: "hash in password file is not the password", link: 1, cred: Credentials{User: "hal", Password: "$2a$", Present: true}, wantAct: AuthRequired, wantReason: ReasonAuth, wantRule: "auth"},
		{name: "optional auth absent", link: 2, wantAct: Allow, wantReason: ReasonDefault, wantRule: "default"},
		{name: "optional auth wrong is not ignored", link: 2, cred: Credentials{User: "bob", Password: "nope", Present: true}, wantAct: AuthRequired, wantReason: ReasonAuth, wantRule: "auth"},
		{name: "over-long password", link: 1, cred: Credentials{User: "alice", Password: "right" + strings.Repeat("x", 80), Present: true}, wantAct: AuthRequired, wantReason: ReasonAuth, wantRule: "auth"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := p.Decide(linkID(tc.link, "10.0.0.4:1"), tc.cred, target(t, "CONNECT", "https", "x.test", 443, ""))
			if d.Action != tc.wantAct || d.Reason != tc.wantReason || d.Rule != tc.wantRule {
				t.Fatalf("got %+v, want %v/%v/%q", d, tc.wantAct, tc.wantReason, tc.wantRule)
			}
			if tc.cred.Password != "" && strings.Contains(Explain(p, linkID(tc.link, "10.0.0.4:1"), tc.cred, target(t, "CONNECT", "https", "x.test", 443, "")), tc.cred.Password) {
				t.Fatal("Explain printed the password")
			}
		})
	}
}

func TestAuthCache(t *testing.T) {
	p := authPolicy(t)
	clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	p.now = func() time.Time { return clock }
	u := p.users["alice"]
	verify := func(u *user, pw string) bool { return p.verify(u, pw, pw, p.tenants[u.tenant].authSlots, callerKey{}) }

	if !verify(u, "right") {
		t.Fatal("right password rejected")
	}
	// Replace the hash with garbage: only the cache can still accept.
	u.hash = []byte("not a hash")
	if !verify(u, "right") {
		t.Fatal("cached success not used")
	}
	if verify(u, "righ") || verify(u, "right ") {
		t.Fatal("cache accepted a different password")
	}

	// A failure is remembered: with a valid hash again, the same wrong
	// password is refused without bcrypt until the entry expires.
	u.hash = []byte(hashOf(t, "rotated"))
	u.mu.Lock()
	u.hasOK = false
	u.mu.Unlock()
	if verify(u, "rotated-wrong") {
		t.Fatal("wrong password accepted")
	}
	u.hash = []byte(hashOf(t, "rotated-wrong"))
	if verify(u, "rotated-wrong") {
		t.Fatal("failure cache not consulted")
	}
	clock = clock.Add(failureTTL + time.Second)
	if !verify(u, "rotated-wrong") {
		t.Fatal("failure cache did not expire")
	}

	// The failure cache is bounded. An invalid hash makes bcrypt fail at
	// once, so this loop costs no key stretching.
	bob := p.users["bob"]
	bob.hash = []byte("invalid")
	for i := range maxFailuresPerUser + 50 {
		// A caller each, so the per-caller failure bound does not cut in.
		pw := "guess" + string(rune('a'+i%26)) + strings.Repeat("!", i/26)
		p.verify(bob, pw, pw, p.tenants[bob.tenant].authSlots, callerKey{linkID: uint32(i), hasLinkID: true})
	}
	if n := len(bob.failures); n > maxFailuresPerUser || n < maxFailuresPerUser/2 {
		t.Fatalf("failure cache holds %d entries, bound is %d", n, maxFailuresPerUser)
	}
}

func TestAuthConcurrent(t *testing.T) {
	p := authPolicy(t)
	var wg sync.WaitGroup
	errs := make(chan string, 64)
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pw, want := "right", Allow
			if i%2 == 1 {
				pw, want = "wrong", AuthRequired
			}
			d := p.Decide(linkID(1, "10.0.0.4:1"), Credentials{User: "alice", Password: pw, Present: true}, Target{Host: "x.test", Port: 443})
			if d.Action != want {
				errs <- d.Action.String()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Errorf("unexpected action %s", e)
	}
}

// TestUnknownAndForeignNamesCostAsMuchAsKnownOnes: a wrong password for a
// real user, a name nobody configured and another tenant's user all run
// one bcrypt and get the same answer, so neither status nor time tells an
// attacker which names exist.
func TestUnknownAndForeignNamesCostAsMuchAsKnownOnes(t *testing.T) {
	p := authPolicy(t)
	for _, tc := range []struct {
		name string
		link uint32
		cred Credentials
	}{
		{"wrong password", 1, Credentials{User: "alice", Password: "wrong", Present: true}},
		{"unknown name", 1, Credentials{User: "eve", Password: "wrong", Present: true}},
		{"another tenant's user", 1, Credentials{User: "bob", Password: "bobpw", Present: true}},
		{"unknown name, unknown caller", 99, Credentials{User: "eve", Password: "x", Present: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := p.bcrypts.Load()
			d := p.Decide(linkID(tc.link, "10.0.0.4:1"), tc.cred, Target{Host: "x.test", Port: 443})
			if d.Action != AuthRequired {
				t.Fatalf("got %v, want auth_required", d.Action)
			}
			if n := p.bcrypts.Load() - before; n != 1 {
				t.Fatalf("ran %d bcrypt checks, want 1 as for a real user", n)
			}
		})
	}
}

// TestGuessingCallerIsCutOffBeforeBcrypt: after maxFailuresPerCaller
// failures one LinkID gets no more bcrypt for the window, while another
// caller still logs in.
func TestGuessingCallerIsCutOffBeforeBcrypt(t *testing.T) {
	p := authPolicy(t)
	clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	p.now = func() time.Time { return clock }
	guess := func(i int) Credentials {
		return Credentials{User: "alice", Password: "guess" + strconv.Itoa(i), Present: true}
	}
	for i := range maxFailuresPerCaller {
		p.Decide(linkID(1, "10.0.0.4:1"), guess(i), Target{Host: "x.test", Port: 443})
	}
	before := p.bcrypts.Load()
	if d := p.Decide(linkID(1, "10.0.0.4:1"), guess(1000), Target{Host: "x.test", Port: 443}); d.Action != AuthRequired {
		t.Fatalf("guess past the bound: %v", d.Action)
	}
	if n := p.bcrypts.Load() - before; n != 0 {
		t.Fatalf("a caller past its failure bound still ran %d bcrypt", n)
	}
	if d := p.Decide(linkID(1, "10.0.0.5:1"), Credentials{User: "alice", Password: "right", Present: true}, Target{Host: "x.test", Port: 443}); d.Action != AuthRequired {
		t.Fatalf("same LinkID, right password, inside the window: %v, want auth_required (the LinkID is cut off)", d.Action)
	}
	clock = clock.Add(failureWindow + time.Second)
	if d := p.Decide(linkID(1, "10.0.0.4:1"), Credentials{User: "alice", Password: "right", Present: true}, Target{Host: "x.test", Port: 443}); d.Action == AuthRequired {
		t.Fatalf("the window ended but the right password is still refused")
	}
}
