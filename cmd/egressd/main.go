// Command egressd is the tenant-aware egress forward proxy. See README.md.
//
//	egressd                        run with the embedded development config
//	egressd serve -config FILE     run
//	egressd check -config FILE     validate a config and print a summary
//	egressd explain ...            why a request would be allowed or denied
//	egressd replay -config NEW LOG what a candidate policy would change
//	egressd rulesets [NAME...]     the built-in rulesets and their contents
//	egressd ca init --out DIR      create a development CA for TLS inspection
//	egressd inject -config FILE    run the workload-side admission webhook
//	egressd version
package main

import (
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	cmd := "serve"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	}
	var err error
	switch cmd {
	case "serve":
		err = serve(args, stdout, stderr)
	case "check":
		err = check(args, stdout)
	case "explain":
		err = explain(args, stdout)
	case "replay":
		err = replay(args, stdout)
	case "rulesets":
		err = rulesets(args, stdout)
	case "ca":
		err = caCommand(args, stdout)
	case "inject":
		err = injectCommand(args, stderr)
	case "version":
		fmt.Fprintf(stdout, "egressd %s %s\n", version, runtime.Version())
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
	default:
		fmt.Fprintf(stderr, "egressd: unknown command %q\n\n%s", cmd, usage)
		return 2
	}
	if err != nil {
		fmt.Fprintf(stderr, "egressd %s: %v\n", cmd, err)
		return 1
	}
	return 0
}

const usage = `usage:
  egressd [serve] [-config FILE]   run the proxy (embedded development config without -config)
  egressd check -config FILE       validate a config file and print a summary
  egressd explain -config FILE [--tenant NAME] [--link-id N] [--source IP] [--user U] URL
                                   show the decision, tenant and rule for one request
  egressd replay -config NEW.yaml ACCESS.log
                                   show which logged requests a candidate policy would decide differently
  egressd rulesets [-region R] [-cloud C] [builtin/NAME...]
                                   list the built-in rulesets, their sources and contents
  egressd ca init --out DIR        create a development CA for TLS inspection
  egressd inject -config FILE      run the workload-side admission webhook
  egressd version
`
