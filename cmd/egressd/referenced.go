package main

import (
	"crypto/sha256"
	"encoding/hex"
	"os"

	"github.com/egressd/egressd/internal/config"
)

// referencedFiles lists every file a config makes egressd read besides
// itself: users' password files and the inspection CA. A rotated
// Kubernetes Secret changes these files and not the config, so the
// reloader watches their content too (issue 13, item 9).
func referencedFiles(cfg config.Config) []string {
	var paths []string
	for _, t := range cfg.ACL.Tenants {
		for _, u := range t.Users {
			if u.PasswordFile != "" {
				paths = append(paths, u.PasswordFile)
			}
		}
	}
	for _, p := range []string{cfg.TLS.CACert, cfg.TLS.CAKey} {
		if p != "" {
			paths = append(paths, p)
		}
	}
	return paths
}

// filesDigest is a digest of the paths and their content as read now,
// following symlinks: the kubelet publishes a Secret by swapping the
// ..data symlink, so the path stays and the content changes. A file that
// cannot be read contributes its error, so its disappearance and return
// are changes too.
func filesDigest(paths []string) string {
	h := sha256.New()
	for _, p := range paths {
		h.Write([]byte(p))
		h.Write([]byte{0})
		b, err := os.ReadFile(p)
		if err != nil {
			h.Write([]byte("error: " + err.Error()))
		} else {
			sum := sha256.Sum256(b)
			h.Write(sum[:])
		}
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)[:8])
}
