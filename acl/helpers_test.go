package acl

import (
	"bytes"
	"net/netip"
	"testing"

	"gopkg.in/yaml.v3"
)

// compileYAML decodes src strictly, as internal/config does, and compiles it.
func compileYAML(t testing.TB, src string) *Policy {
	t.Helper()
	cfg := decodeYAML(t, src)
	p, err := Compile(cfg)
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	return p
}

func decodeYAML(t testing.TB, src string) Config {
	t.Helper()
	var cfg Config
	dec := yaml.NewDecoder(bytes.NewReader([]byte(src)))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil {
		t.Fatalf("decode: %v", err)
	}
	return cfg
}

// target builds a Target the way the proxy does, through ParseHost.
func target(t testing.TB, method, scheme, host string, port uint16, path string) Target {
	t.Helper()
	h, addr, err := ParseHost(host)
	if err != nil {
		t.Fatalf("ParseHost(%q): %v", host, err)
	}
	return Target{Method: method, Scheme: scheme, Host: h, Addr: addr, Port: port, Path: path}
}

func linkID(id uint32, lb string) Identity {
	return Identity{
		LinkID:    id,
		HasLinkID: true,
		Client:    netip.MustParseAddrPort("10.2.0.5:40000"),
		LB:        netip.MustParseAddrPort(lb),
	}
}

func source(client string) Identity {
	return Identity{
		Client: netip.MustParseAddrPort(client),
		LB:     netip.MustParseAddrPort("10.0.0.4:1234"),
	}
}
