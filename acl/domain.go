package acl

import (
	"errors"
	"strings"
)

// domainKind is how a domain pattern matches.
type domainKind uint8

const (
	domainExact     domainKind = iota // "api.example.com"
	domainSubdomain                   // "*.example.com": strictly below example.com
	domainSquid                       // ".example.com": example.com and below
	domainAny                         // "*": every domain (never an IP literal)
)

// parseDomainPattern validates and normalises one pattern from domains,
// bump or splice. The returned name is in ParseHost form.
func parseDomainPattern(s string) (domainKind, string, error) {
	switch {
	case s == "*":
		return domainAny, "", nil
	case s == "":
		return 0, "", errors.New("empty domain")
	case s == "*.":
		return 0, "", errors.New(`wildcard must be followed by a domain; use "*.example.com"`)
	case s == ".":
		return 0, "", errors.New(`a leading dot must be followed by a domain; use ".example.com"`)
	}
	kind, rest := domainExact, s
	switch {
	case strings.HasPrefix(s, "*."):
		kind, rest = domainSubdomain, s[2:]
	case strings.HasPrefix(s, "."):
		kind, rest = domainSquid, s[1:]
	}
	if strings.Contains(rest, "*") {
		return 0, "", errors.New(`"*" is only allowed as the whole first label, as in "*.example.com"`)
	}
	if strings.HasPrefix(rest, ".") {
		return 0, "", errors.New("empty label")
	}
	name, addr, err := parseHost(rest)
	if err != nil {
		return 0, "", err
	}
	if addr.IsValid() {
		return 0, "", errors.New("IP address in domains; use cidrs")
	}
	return kind, name, nil
}

// domainIndex finds, for a host, the ids (rule indices) whose domain
// patterns match it, with one map lookup per label so its cost does not
// grow with the number of rules. Each id list is ascending.
type domainIndex struct {
	exact map[string][]int32 // host equals key ("x" and ".x")
	under map[string][]int32 // host is strictly below key ("*.x" and ".x")
	any   []int32            // "*"
}

func newDomainIndex() *domainIndex {
	return &domainIndex{exact: map[string][]int32{}, under: map[string][]int32{}}
}

func (d *domainIndex) add(kind domainKind, name string, id int32) {
	switch kind {
	case domainExact:
		d.exact[name] = appendID(d.exact[name], id)
	case domainSubdomain:
		d.under[name] = appendID(d.under[name], id)
	case domainSquid:
		d.exact[name] = appendID(d.exact[name], id)
		d.under[name] = appendID(d.under[name], id)
	case domainAny:
		d.any = appendID(d.any, id)
	}
}

// appendID keeps lists ascending and free of duplicates when rules are
// added in order (a rule listing "a.com" twice appears once).
func appendID(ids []int32, id int32) []int32 {
	if n := len(ids); n > 0 && ids[n-1] == id {
		return ids
	}
	return append(ids, id)
}

// contains reports whether any pattern matches host.
func (d *domainIndex) contains(host string) bool {
	if len(d.any) > 0 || len(d.exact[host]) > 0 {
		return true
	}
	for i := 0; i < len(host); i++ {
		if host[i] == '.' && len(d.under[host[i+1:]]) > 0 {
			return true
		}
	}
	return false
}
