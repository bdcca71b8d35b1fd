package inject

import "strings"

// patchOp is one RFC 6902 operation. The webhook only emits add and replace,
// so every op carries a value.
type patchOp struct {
	Op    string `json:"op"`
	Path  string `json:"path"`
	Value any    `json:"value"`
}

// pointerEscaper escapes a JSON Pointer reference token (RFC 6901 §3):
// '~' first, so the '~' introduced for '/' is not escaped again.
var pointerEscaper = strings.NewReplacer("~", "~0", "/", "~1")

func escapePointer(token string) string { return pointerEscaper.Replace(token) }

// appendOps appends items to the array at arrayPath that currently holds n
// elements. An absent or empty array is created whole: "add .../-" needs the
// array to exist (RFC 6902 §4.1), and "add" on an existing member replaces it.
func appendOps[T any](arrayPath string, n int, items []T) []patchOp {
	if len(items) == 0 {
		return nil
	}
	if n == 0 {
		return []patchOp{{Op: "add", Path: arrayPath, Value: items}}
	}
	ops := make([]patchOp, 0, len(items))
	for _, it := range items {
		ops = append(ops, patchOp{Op: "add", Path: arrayPath + "/-", Value: it})
	}
	return ops
}

// annotationOp sets key in metadata.annotations, creating the map when the
// pod has none.
func annotationOp(annotations map[string]string, key, value string) patchOp {
	if len(annotations) == 0 {
		return patchOp{Op: "add", Path: "/metadata/annotations", Value: map[string]string{key: value}}
	}
	return patchOp{Op: "add", Path: "/metadata/annotations/" + escapePointer(key), Value: value}
}
