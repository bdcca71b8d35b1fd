package acl

import (
	"strings"
	"testing"
)

func TestParseHost(t *testing.T) {
	tests := []struct {
		name     string
		in       string
		wantHost string
		wantIP   bool
		wantErr  string
	}{
		{name: "lower-cased", in: "API.Example.COM", wantHost: "api.example.com"},
		{name: "trailing dot", in: "example.com.", wantHost: "example.com"},
		{name: "underscore kept", in: "my_bucket.s3.amazonaws.com", wantHost: "my_bucket.s3.amazonaws.com"},
		{name: "IDN to punycode", in: "Bücher.example", wantHost: "xn--bcher-kva.example"},
		{name: "ideographic full stop", in: "bücher。example", wantHost: "xn--bcher-kva.example"},
		{name: "fullwidth digits are an IP", in: "１２７.０.０.１", wantHost: "127.0.0.1", wantIP: true},
		{name: "dotted quad", in: "192.0.2.1", wantHost: "192.0.2.1", wantIP: true},
		{name: "dotted quad trailing dot", in: "192.0.2.1.", wantHost: "192.0.2.1", wantIP: true},
		{name: "decimal", in: "2130706433", wantHost: "127.0.0.1", wantIP: true},
		{name: "octal", in: "0177.0.0.1", wantHost: "127.0.0.1", wantIP: true},
		{name: "hex", in: "0x7f.0x0.0x0.0x1", wantHost: "127.0.0.1", wantIP: true},
		{name: "hex upper", in: "0X7F000001", wantHost: "127.0.0.1", wantIP: true},
		{name: "short form", in: "127.1", wantHost: "127.0.0.1", wantIP: true},
		{name: "three parts", in: "169.254.43518", wantHost: "169.254.169.254", wantIP: true},
		{name: "metadata decimal", in: "2852039166", wantHost: "169.254.169.254", wantIP: true},
		{name: "bracketed IPv6", in: "[2001:DB8::1]", wantHost: "2001:db8::1", wantIP: true},
		{name: "bare IPv6", in: "::1", wantHost: "::1", wantIP: true},
		{name: "mapped IPv6 unmapped", in: "[::ffff:7f00:1]", wantHost: "127.0.0.1", wantIP: true},
		{name: "empty", in: "", wantErr: `acl: invalid host: "": empty`},
		{name: "octet too big", in: "1.2.3.256", wantErr: `acl: invalid host: "1.2.3.256": numeric last label but not an IPv4 address`},
		{name: "five parts", in: "1.2.3.4.5", wantErr: `acl: invalid host: "1.2.3.4.5": numeric last label but not an IPv4 address`},
		{name: "bad octal digit", in: "08.0.0.1", wantErr: `acl: invalid host: "08.0.0.1": numeric last label but not an IPv4 address`},
		{name: "decimal overflow", in: "4294967296", wantErr: `acl: invalid host: "4294967296": numeric last label but not an IPv4 address`},
		{name: "zone", in: "[fe80::1%eth0]", wantErr: `acl: invalid host: "[fe80::1%eth0]": zones are not allowed`},
		{name: "IPv4 in brackets", in: "[127.0.0.1]", wantErr: `acl: invalid host: "[127.0.0.1]": brackets must hold an IPv6 address`},
		{name: "unclosed bracket", in: "[::1", wantErr: `acl: invalid host: "[::1": unclosed bracket`},
		{name: "empty label", in: "a..b", wantErr: `acl: invalid host: "a..b": empty label`},
		{name: "only dot", in: ".", wantErr: `acl: invalid host: ".": empty name`},
		{name: "wildcard is not a host", in: "*.example.com", wantErr: `acl: invalid host: "*.example.com": invalid character '*'`},
		{name: "space", in: "a b.com", wantErr: `acl: invalid host: "a b.com": invalid character ' '`},
		{name: "percent", in: "a%2e.com", wantErr: `acl: invalid host: "a%2e.com": invalid character '%'`},
		{name: "long label", in: strings.Repeat("a", 64) + ".com", wantErr: `label of 64 characters is longer than 63`},
		{name: "huge input", in: strings.Repeat("a", 2000), wantErr: `acl: invalid host: "` + strings.Repeat("a", 64) + `...": 2000 bytes is too long`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			host, addr, err := ParseHost(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("ParseHost(%q) error = %v, want %q", tc.in, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseHost(%q): %v", tc.in, err)
			}
			if host != tc.wantHost || addr.IsValid() != tc.wantIP {
				t.Fatalf("ParseHost(%q) = %q, %v; want %q, ip=%v", tc.in, host, addr, tc.wantHost, tc.wantIP)
			}
			if addr.IsValid() && addr.String() != host {
				t.Fatalf("addr %v and host %q disagree", addr, host)
			}
		})
	}
}

// FuzzParseHost: whatever is accepted is a fixed point, and an IP result is
// consistent with its host string.
func FuzzParseHost(f *testing.F) {
	for _, s := range []string{"example.com", "Bücher.example.", "2130706433", "0x7f.1", "[::ffff:1.2.3.4]", "1.2.3.256", "a..b", "１２７.０.０.１"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		host, addr, err := ParseHost(s)
		if err != nil {
			return
		}
		host2, addr2, err := ParseHost(host)
		if err != nil {
			t.Fatalf("ParseHost(%q) = %q, which does not re-parse: %v", s, host, err)
		}
		if host2 != host || addr2 != addr {
			t.Fatalf("ParseHost(%q) = %q %v, re-parsed to %q %v", s, host, addr, host2, addr2)
		}
		if addr.IsValid() != (addr.String() == host) {
			t.Fatalf("ParseHost(%q) = %q with addr %v", s, host, addr)
		}
	})
}
