package proxy

import (
	"bytes"
	"errors"
	"testing"
)

func TestNormalizePath(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", "/"},
		{"/", "/"},
		{"/admin", "/admin"},
		{"/%61dmin", "/admin"},
		{"/%41DMIN%7e", "/ADMIN~"},
		{"/a/./b/../c", "/a/c"},
		{"/a/%2e%2e/admin", "/admin"},
		{"/a/b/..", "/a/"},
		{"/a/b/.", "/a/b/"},
		{"/..", "/"},
		{"/../../admin", "/admin"},
		{"//admin", "/admin"},
		{"/a//b/", "/a/b/"},
		{"/x;jsessionid=1/admin", "/x;jsessionid=1/admin"},
		{"/a%3bb", "/a%3Bb"},
		{"/.well-known/x", "/.well-known/x"},
		{"/a/.hidden", "/a/.hidden"},
		{"/a..b/c", "/a..b/c"},
	} {
		got, err := normalizePath(nil, []byte(tc.in))
		if err != nil || string(got) != tc.want {
			t.Errorf("normalizePath(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
			continue
		}
		// Normal form is a fixed point: what is sent decides the same way again.
		again, err := normalizePath(nil, got)
		if err != nil || string(again) != string(got) {
			t.Errorf("normalizePath(%q) is not stable: %q then %q (%v)", tc.in, got, again, err)
		}
	}
	for _, bad := range []string{"/a%2Fb", "/a%2fb", "/a%5Cb", "/a%00", "/a\\b", "/a%zz", "/a%4", "/caf\xc3\xa9", "relative"} {
		if got, err := normalizePath(nil, []byte(bad)); !errors.Is(err, errAmbiguousPath) {
			t.Errorf("normalizePath(%q) = %q, %v; want errAmbiguousPath", bad, got, err)
		}
	}
}

func FuzzNormalizePath(f *testing.F) {
	for _, s := range []string{"/", "/%61dmin", "/a/../b", "//x/./y/", "/a%2fb", "/;p/..", "/%2e%2E/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		got, err := normalizePath(nil, []byte(in))
		if err != nil {
			return
		}
		again, err := normalizePath(nil, got)
		if err != nil || string(again) != string(got) {
			t.Fatalf("not a fixed point: %q -> %q -> %q (%v)", in, got, again, err)
		}
		segs := bytes.Split(got[1:], []byte("/"))
		for i, s := range segs {
			if string(s) == "." || string(s) == ".." || len(s) == 0 && i != len(segs)-1 {
				t.Fatalf("%q -> %q still has a dot or empty segment", in, got)
			}
		}
	})
}
