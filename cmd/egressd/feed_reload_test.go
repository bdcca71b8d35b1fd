package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// replaceFile publishes new content atomically, as a feed downloader does.
func replaceFile(t *testing.T, path, text string) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// TestDenyFeedChangeReloadsWithoutConfigChange: only the feed file
// changes (the config's bytes stay the same), and the running proxy
// starts denying the newly listed address with rule feed/NAME; an empty
// feed is refused and the block stays in force.
func TestDenyFeedChangeReloadsWithoutConfigChange(t *testing.T) {
	s := newServer(t)
	feed := filepath.Join(t.TempDir(), "threat.txt")
	replaceFile(t, feed, "# nothing local yet\n192.0.2.1\n")
	cfg := strings.Replace(validConfig(s.proxy, s.admin), "tenants:\n",
		"deny_feeds:\n  - {name: threat, file: "+feed+"}\ntenants:\n", 1)
	startWithConfig(t, writeConfig(t, cfg), s)
	echo := startEcho(t)
	if got := getStatus(t, s.proxy, echo); got == 403 {
		t.Fatalf("before the feed lists loopback: %d", got)
	}

	replaceFile(t, feed, "# now listed\n192.0.2.1\n127.0.0.1\n")
	waitFor(t, 15*time.Second, "the changed feed to deny", func() bool { return getStatus(t, s.proxy, echo) == 403 })
	waitFor(t, 5*time.Second, "the access log to name the feed", func() bool {
		return strings.Contains(s.stdout.String(), `"rule":"feed/threat"`)
	})

	replaceFile(t, feed, "")
	waitFor(t, 15*time.Second, "the empty feed to be refused", func() bool {
		return strings.Contains(s.stderr.String(), "no domain or CIDR entries")
	})
	if got := getStatus(t, s.proxy, echo); got != 403 {
		t.Fatalf("after an empty feed: %d, want 403 from the feed still in force", got)
	}
}

// TestCheckSummarisesDenyFeeds: `egressd check` reports each feed's size
// and the lines it did not apply.
func TestCheckSummarisesDenyFeeds(t *testing.T) {
	feed := filepath.Join(t.TempDir(), "hosts")
	replaceFile(t, feed, "0.0.0.0 bad.example worse.example\n||ads.example^$third-party\n203.0.113.0/24\n")
	cfg := strings.Replace(validConfig(freeAddr(t), freeAddr(t)), "tenants:\n",
		"deny_feeds:\n  - {name: hosts, file: "+feed+", report_only: true}\ntenants:\n", 1)
	out, stderr, code := egressd(t, "check", "-config", writeConfig(t, cfg))
	if code != 0 {
		t.Fatalf("check exit %d: %s", code, stderr)
	}
	want := "deny feed hosts (report-only): " + feed + ", 2 domains, 1 address ranges, 1 lines skipped (first: line 2)"
	if !strings.Contains(out, want) {
		t.Fatalf("check output lacks %q:\n%s", want, out)
	}
}
