// Command egressd is the tenant-aware egress forward proxy. See README.md.
//
//	egressd                        run with the embedded development config
//	egressd serve -config FILE     run
//	egressd check -config FILE     validate and lint a config, print a summary
//	egressd explain ...            why a request would be allowed or denied
//	egressd replay -config NEW LOG what a candidate policy would change
//	egressd rulesets [NAME...]     the built-in rulesets and their contents
//	egressd ca init --out DIR      create a development CA for TLS inspection
//	egressd version
//
// The workload-side admission webhook is a separate command,
// cmd/egressd-inject, so this binary carries no Kubernetes client code.
//
// Exit codes follow the usual convention: 0 success (and -h), 1 a runtime
// failure (a bad config file, a port in use, decisions changed under
// replay -fail-on-change), 2 a usage error (unknown command or flag,
// missing argument).
package main

import (
	"io"
	"os"
)

func main() {
	os.Exit(run(os.Args[1:], env{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr}))
}

// env is what a command may touch of the process: its standard streams.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
}
