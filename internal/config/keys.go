package config

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// ParseAll is Parse that reports every problem at once, for `egressd
// check`: unknown keys (with the closest valid key, in YAML terms, never a
// Go type name) and durations written as bare numbers, next to every
// validation error, each with its line. The config is usable only when the
// error is nil. serve, reload and check all parse this way, so the
// message an operator reads is the same wherever the file is loaded.
func ParseAll(data []byte, name string) (Config, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return Config{}, fmt.Errorf("%s: %w", name, err)
	}
	var errs []error
	if len(root.Content) > 0 {
		walkKeys(root.Content[0], reflect.TypeFor[Config](), "", &errs)
	}
	// The walk dropped unknown keys and gave bare-number durations their
	// unit, so the rest of the file still decodes and validates.
	var cfg Config
	if err := root.Decode(&cfg); err != nil {
		errs = append(errs, errors.New(strings.TrimPrefix(err.Error(), "yaml: unmarshal errors:\n  ")))
	} else if len(root.Content) == 0 {
		return cfg, fmt.Errorf("%s: config is empty", name)
	} else {
		cfg.SetDefaults()
		errs = append(errs, cfg.Validate())
	}
	// The walk changed root, so lines come from the file as written.
	return cfg, Locate(errors.Join(errs...), data, name)
}

// Locate prefixes each error joined in err with name:line, found from the
// YAML path the message starts with ("tenants[1].users[0].password_file: ...")
// in the config source data. Errors without a known path get name only.
func Locate(err error, data []byte, name string) error {
	if err == nil {
		return nil
	}
	var root yaml.Node
	if yaml.Unmarshal(data, &root) != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return located(err, &root, name)
}

var (
	durationType  = reflect.TypeFor[time.Duration]()
	unmarshalType = reflect.TypeFor[yaml.Unmarshaler]()
)

// walkKeys checks the mapping keys under n against the yaml tags of t.
func walkKeys(n *yaml.Node, t reflect.Type, path string, errs *[]error) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if t == durationType {
		if n.Kind == yaml.ScalarNode && (n.Tag == "!!int" || n.Tag == "!!float") && n.Value != "0" {
			*errs = append(*errs, fmt.Errorf("%s: %s: a duration needs a unit; use %q", path, n.Value, n.Value+"s"))
			n.Value, n.Tag = n.Value+"s", "!!str"
		}
		return
	}
	if reflect.PointerTo(t).Implements(unmarshalType) {
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			return
		}
		fields := map[string]reflect.Type{}
		yamlFields(t, fields)
		kept := n.Content[:0]
		for i := 0; i+1 < len(n.Content); i += 2 {
			key, val := n.Content[i].Value, n.Content[i+1]
			p := join(path, key)
			ft, ok := fields[key]
			if !ok {
				*errs = append(*errs, fmt.Errorf("%s: unknown key%s", p, suggest(key, fields)))
				continue
			}
			walkKeys(val, ft, p, errs)
			kept = append(kept, n.Content[i], val)
		}
		n.Content = kept
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			return
		}
		for i, c := range n.Content {
			walkKeys(c, t.Elem(), fmt.Sprintf("%s[%d]", path, i), errs)
		}
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			walkKeys(n.Content[i+1], t.Elem(), join(path, n.Content[i].Value), errs)
		}
	}
}

// YAMLKeys lists every key of t's yaml tags, inline structs flattened,
// as dotted paths below prefix ("proxy.listen", "tenants[].rules[].ports").
// The README reference test walks it.
func YAMLKeys(t reflect.Type, prefix string) []string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	fields := map[string]reflect.Type{}
	yamlFields(t, fields)
	var out []string
	for name, ft := range fields {
		p := join(prefix, name)
		out = append(out, p)
		for ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		switch {
		case ft.Kind() == reflect.Struct && ft != durationType:
			out = append(out, YAMLKeys(ft, p)...)
		case ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct:
			out = append(out, YAMLKeys(ft.Elem(), p+"[]")...)
		case ft.Kind() == reflect.Map && ft.Elem().Kind() == reflect.Slice && ft.Elem().Elem().Kind() == reflect.Struct:
			out = append(out, YAMLKeys(ft.Elem().Elem(), p+".NAME[]")...)
		}
	}
	slices.Sort(out)
	return out
}

func yamlFields(t reflect.Type, into map[string]reflect.Type) {
	for f := range t.Fields() {
		if !f.IsExported() {
			continue
		}
		name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" {
			continue
		}
		if strings.Contains(opts, "inline") {
			yamlFields(f.Type, into)
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		into[name] = f.Type
	}
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// suggest names the valid key closest to key, or lists them all when
// none is close (at most two edits, or one being a prefix of the other).
func suggest(key string, fields map[string]reflect.Type) string {
	names := make([]string, 0, len(fields))
	for n := range fields {
		names = append(names, n)
	}
	slices.Sort(names)
	best, bestD := "", 3
	for _, n := range names {
		if d := editDistance(key, n); d < bestD {
			best, bestD = n, d
		}
	}
	if best == "" {
		return " (valid keys: " + strings.Join(names, ", ") + ")"
	}
	return " (did you mean " + best + "?)"
}

// editDistance is the Levenshtein distance of two short keys.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
