package deploycheck

import (
	"context"
	"path/filepath"
	"testing"
)

// Kustomization directories, relative to this package.
var (
	dirBase       = filepath.Join("..", "corporate", "base")
	dirDev        = filepath.Join("..", "corporate", "overlays", "dev")
	dirAKS        = filepath.Join("..", "corporate", "overlays", "aks")
	dirAKSManaged = filepath.Join("..", "corporate", "overlays", "aks-managed-prometheus")
	dirWorkload   = filepath.Join("..", "workload")
	dirStatic     = filepath.Join("..", "workload", "static")
	dirExample    = filepath.Join("..", "workload", "example")
	dirMonitoring = filepath.Join("..", "monitoring")
)

func render(t *testing.T, dir string) *Set {
	t.Helper()
	s, err := Render(context.Background(), dir)
	if err != nil {
		t.Fatalf("render: %v", err)
	}
	return s
}

func clone(t *testing.T, s *Set) *Set {
	t.Helper()
	c, err := s.Clone()
	if err != nil {
		t.Fatalf("clone: %v", err)
	}
	return c
}
