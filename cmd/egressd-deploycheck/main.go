// Command egressd-deploycheck renders kustomization directories with
// kubectl and runs deploy/deploycheck on each: strict, case-sensitive
// decoding into the k8s.io/api types and the cross-checks that catch the
// Azure and Kubernetes traps (docs/deploy.md). A platform team runs it on its
// own overlays in CI:
//
//	egressd-deploycheck deploy/corporate/overlays/aks my-overlays/prod
//
// Exit codes: 0 every directory passes, 1 a check failed or a directory
// deploys nothing deploycheck knows, 2 a usage error.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/egressd/egressd/deploy/deploycheck"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("egressd-deploycheck", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: egressd-deploycheck DIR...\n\nrender each kustomization DIR and check it (docs/deploy.md)\n\nexample:\n  egressd-deploycheck deploy/corporate/overlays/aks deploy/workload\n")
	}
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return 0
		}
		return 2
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return 2
	}
	failed := false
	for _, dir := range fs.Args() {
		if err := checkDir(dir, stdout); err != nil {
			fmt.Fprintf(stderr, "FAIL %s\n%s\n", dir, indent(err.Error()))
			failed = true
		}
	}
	if failed {
		return 1
	}
	return 0
}

func checkDir(dir string, stdout io.Writer) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s, err := deploycheck.Render(ctx, dir)
	if err != nil {
		return err
	}
	checks, groups := deploycheck.ChecksFor(s)
	if len(checks) == 0 {
		return fmt.Errorf("deploys neither egressd, its webhook nor the static proxy-env route: nothing to check")
	}
	if err := deploycheck.RunAll(s, checks); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "ok   %s (%d objects; %s: %d checks)\n", dir, len(s.Objects), strings.Join(groups, ", "), len(checks))
	return nil
}

func indent(s string) string {
	return "  " + strings.ReplaceAll(s, "\n", "\n  ")
}
