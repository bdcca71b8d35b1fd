package main

import (
	"fmt"
	"os"
	"strings"

	"go.uber.org/zap"

	"github.com/egressd/egressd/acl"
)

// fileStamp summarises the files a config references (deny feeds) by
// size and modification time, so the reload poll notices a changed feed
// without reading megabytes every tick. os.Stat follows symlinks, so a
// ConfigMap or Secret swap (a new ..data target) changes the stamp too.
// A missing file stamps as "missing": its reappearance is a change.
func fileStamp(paths []string) string {
	var b strings.Builder
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			fmt.Fprintf(&b, "%s:missing;", p)
			continue
		}
		fmt.Fprintf(&b, "%s:%d:%d;", p, fi.Size(), fi.ModTime().UnixNano())
	}
	return b.String()
}

// logFeeds reports what each deny feed holds, and the lines it skipped,
// at startup and after every reload.
func logFeeds(log *zap.Logger, pol *acl.Policy) {
	for _, f := range pol.Feeds() {
		fields := []zap.Field{zap.String("feed", f.Name), zap.String("file", f.File),
			zap.Int("domains", f.Domains), zap.Int("ranges", f.Ranges), zap.Bool("report_only", f.ReportOnly)}
		if f.Skipped > 0 {
			fields = append(fields, zap.Int("skipped_lines", f.Skipped), zap.Int("first_skipped_line", f.FirstSkipped))
		}
		log.Info("deny feed loaded", fields...)
	}
}
