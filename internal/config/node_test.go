package config

import (
	"testing"

	"gopkg.in/yaml.v3"
)

func mustNode(t *testing.T, raw []byte) *yaml.Node {
	t.Helper()
	var n yaml.Node
	if err := yaml.Unmarshal(raw, &n); err != nil {
		t.Fatal(err)
	}
	return &n
}
