package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestSquidExtendedLineCountsHeadBytesMIMEAndTenant: the Squid line's
// bytes field counts what the client received, head included, as Squid's
// does; its type field is the response's Content-Type; and the trailing
// fields name the tenant, so a SIEM gets it without a parser change.
func TestSquidExtendedLineCountsHeadBytesMIMEAndTenant(t *testing.T) {
	t.Parallel()
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, "hello from the origin\n")
	}))
	t.Cleanup(origin.Close)
	host := strings.TrimPrefix(origin.URL, "http://")

	s := newServer(t)
	logPath := filepath.Join(t.TempDir(), "access.log")
	cfg := strings.Replace(validConfig(s.proxy, s.admin), "log:\n", "log:\n  format: squid_extended\n  output: "+logPath+"\n", 1)
	startWithConfig(t, writeConfig(t, cfg), s)

	c, err := net.DialTimeout("tcp", s.proxy, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(c, "GET http://%s/x HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", host, host)
	raw, err := io.ReadAll(c)
	if err != nil || !strings.HasPrefix(string(raw), "HTTP/1.1 200") {
		t.Fatalf("response %q, %v", raw, err)
	}

	var line string
	waitFor(t, 10*time.Second, "the access line", func() bool {
		b, _ := os.ReadFile(logPath)
		line = strings.TrimSpace(string(b))
		return line != ""
	})
	f := strings.Fields(line)
	if len(f) < 11 {
		t.Fatalf("not a squid_extended line: %q", line)
	}
	if got, _ := strconv.Atoi(f[4]); got != len(raw) {
		t.Errorf("bytes field %s, want %d (every byte the client received, head included)\n%s", f[4], len(raw), line)
	}
	if f[9] != "text/plain" {
		t.Errorf("type field %q, want text/plain (the Content-Type without parameters)\n%s", f[9], line)
	}
	if f[3] != "TCP_MISS/200" || f[5] != "GET" || f[6] != "http://"+host+"/x" {
		t.Errorf("code/method/url fields %q %q %q\n%s", f[3], f[5], f[6], line)
	}
	if !strings.Contains(line, " tenant=demo ") {
		t.Errorf("line lacks tenant=demo:\n%s", line)
	}
}
