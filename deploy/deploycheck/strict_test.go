package deploycheck

import (
	"strings"
	"testing"
)

// Go's encoding/json matches field names case-insensitively; the API
// server does not, and drops (or, with strict validation, refuses) such a
// field. deploycheck must refuse it like the API server.
func TestDecodeIsCaseSensitiveAndStrictLikeTheAPIServer(t *testing.T) {
	for name, spec := range map[string]string{
		"lower-cased pod field":  "terminationgraceperiodseconds: 50\n      containers: [{name: a, image: x}]",
		"capitalised field":      "containers: [{name: a, image: x, securityContext: {ReadOnlyRootFilesystem: true}}]",
		"duplicate via JSON key": "containers: [{name: a, image: x}]\n      hostNetwork: false\n      hostnetwork: true",
	} {
		t.Run(name, func(t *testing.T) {
			doc := "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec:\n  selector: {matchLabels: {a: b}}\n  template:\n    metadata: {labels: {a: b}}\n    spec:\n      " + spec + "\n"
			_, err := Decode([]byte(doc), "test")
			if err == nil || !strings.Contains(err.Error(), "strict decode") {
				t.Fatalf("accepted or wrong error: %v", err)
			}
		})
	}
	ok := "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec:\n  selector: {matchLabels: {a: b}}\n  template:\n    metadata: {labels: {a: b}}\n    spec:\n      terminationGracePeriodSeconds: 50\n      containers: [{name: a, image: x}]\n"
	if _, err := Decode([]byte(ok), "test"); err != nil {
		t.Fatalf("correctly cased deployment refused: %v", err)
	}
}
