// Command egressd-bench load-tests a forward proxy the way an Azure Private
// Link Service loads egressd, and hosts the helpers compare.sh needs:
//
//	egressd-bench run      --proxy ADDR --mode MODE ...   measure one mode
//	egressd-bench relay    --listen ADDR --origin ADDR    the splice floor
//	egressd-bench goproxy  --listen ADDR                  the goproxy reference
//	egressd-bench gencert  --cert F --key F [--ca]        origin or MITM CA files
//	egressd-bench report   --in F --out RESULTS.md        medians and ratios
//
// See bench/README.md.
package main

import (
	"fmt"
	"os"
)

func main() {
	if len(os.Args) < 2 {
		usage()
		os.Exit(2)
	}
	cmds := map[string]func([]string) int{
		"run":     cmdRun,
		"relay":   cmdRelay,
		"goproxy": cmdGoproxy,
		"gencert": cmdGencert,
		"report":  cmdReport,
	}
	cmd, ok := cmds[os.Args[1]]
	if !ok {
		usage()
		os.Exit(2)
	}
	os.Exit(cmd(os.Args[2:]))
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: egressd-bench run|relay|goproxy|gencert|report [flags]; -h after a command lists its flags")
}
