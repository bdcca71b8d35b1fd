package main

import (
	"fmt"
	"io"
	"os"

	"github.com/egressd/egressd/acl"
	"github.com/egressd/egressd/internal/config"
)

// replay re-decides logged traffic under a candidate config. With
// -fail-on-change it is a CI gate: any changed decision exits 1.
func replay(e env, args []string) error {
	fs := newFlags(e, "replay")
	path := fs.String("config", "", "candidate config file")
	failOnChange := fs.Bool("fail-on-change", false, "exit 1 when any replayed decision changes (a CI gate for policy changes)")
	if err := fs.parse(args); err != nil {
		return err
	}
	if *path == "" {
		return usagef("-config NEW.yaml is required")
	}
	if fs.NArg() != 1 {
		return usagef("give exactly one access log (or - for stdin)")
	}
	cfg, err := config.Load(*path)
	if err != nil {
		return err
	}
	pol, err := acl.Compile(cfg.ACL)
	if err != nil {
		return err
	}
	var in io.Reader = e.stdin
	if name := fs.Arg(0); name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return err
		}
		defer f.Close()
		in = f
	}
	changed, err := acl.Replay(pol, in, e.stdout)
	if err != nil {
		return err
	}
	if *failOnChange && changed > 0 {
		return fmt.Errorf("%w: %d under %s", errChanged, changed, *path)
	}
	return nil
}
