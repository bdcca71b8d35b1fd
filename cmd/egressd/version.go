package main

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// version is set at build time with -ldflags "-X main.version=..." (make
// build, make docker). A plain `go build` leaves it empty and buildVersion
// reads what the toolchain stamped instead.
var version string

// buildVersion is the version egressd reports and logs: the -X value,
// else the module version (set by `go install module@version`), else the
// VCS revision the toolchain stamped into a `go build` from a checkout.
func buildVersion() string {
	if version != "" {
		return version
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "dev"
	}
	return versionFrom(bi)
}

func versionFrom(bi *debug.BuildInfo) string {
	var rev, modified string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			modified = s.Value
		}
	}
	v := bi.Main.Version
	if v == "" || v == "(devel)" {
		v = "dev"
	}
	// Since Go 1.24 a build in a checkout stamps a pseudo-version that
	// already names the revision (and +dirty); older or VCS-less builds
	// leave "(devel)", so the revision is appended by hand.
	if rev != "" && v == "dev" {
		if len(rev) > 12 {
			rev = rev[:12]
		}
		v += "+" + rev
		if modified == "true" {
			v += "-dirty"
		}
	}
	return v
}

func printVersion(e env, args []string) error {
	f := newFlags(e, "version")
	if err := f.parse(args); err != nil {
		return err
	}
	if f.NArg() > 0 {
		return usagef("takes no arguments")
	}
	fmt.Fprintf(e.stdout, "egressd %s %s\n", buildVersion(), runtime.Version())
	return nil
}
