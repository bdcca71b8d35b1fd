package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
)

// command is one row of the command table: `egressd -h` prints the table,
// `egressd NAME -h` prints the row's usage, flags and example.
type command struct {
	name     string
	synopsis string // arguments after the name, as the usage line shows them
	summary  string
	example  string
	run      func(e env, args []string) error
	hidden   bool // a spelling of another command ("help")
}

// commands is the table in the order `egressd -h` lists it. A new
// subcommand is one more row; its run builds its flags with newFlags.
func commands() []command {
	return []command{
		{name: "serve", synopsis: "[-config FILE]", summary: "run the proxy (the embedded development config without -config)",
			example: "egressd serve -config /etc/egressd/config.yaml", run: serve},
		{name: "check", synopsis: "[-strict] -config FILE", summary: "validate and lint a config with the code a reload uses; print a summary",
			example: "egressd check -config internal/config/default.yaml", run: check},
		{name: "explain", synopsis: "[-config FILE] [--tenant T | --link-id N [--lb IP] | --source IP] [--user U:P] [-method M] URL",
			summary: "the tenant, rule, decision and TLS inspection verdict for one request",
			example: "egressd explain --tenant demo http://127.0.0.1:8000/", run: explain},
		{name: "replay", synopsis: "[-fail-on-change] -config NEW.yaml ACCESS.log|-",
			summary: "which logged requests a candidate policy would decide differently",
			example: "egressd replay -fail-on-change -config new.yaml access.log", run: replay},
		{name: "rules-report", synopsis: "[-json] [-top N] -config FILE ACCESS.log|-...",
			summary: "hits per rule, rules never hit or shadowed, most denied destinations, from access logs",
			example: "egressd rules-report -config /etc/egressd/config.yaml access.log access.log.1", run: rulesReport},
		{name: "rulesets", synopsis: "[-region R] [-cloud C] [builtin/NAME...]",
			summary: "the built-in rulesets: source, revision and contents per cloud",
			example: "egressd rulesets -region westeurope builtin/aks-required", run: rulesets},
		{name: "ca", synopsis: "init --out DIR", summary: "create a development CA for TLS inspection and say how to trust it",
			example: "egressd ca init --out ./dev-ca", run: caCommand},
		{name: "version", summary: "print the version, VCS revision and Go version",
			example: "egressd version", run: printVersion},
		{name: "help", summary: "print this list", run: nil, hidden: true},
	}
}

func lookup(name string) (command, bool) {
	for _, c := range commands() {
		if c.name == name {
			return c, true
		}
	}
	return command{}, false
}

// run dispatches args and returns the process exit code.
func run(args []string, e env) int {
	name := "serve"
	if len(args) > 0 {
		switch args[0] {
		case "-h", "-help", "--help", "help":
			printCommands(e.stdout)
			return 0
		case "-version", "--version":
			printVersion(e, nil)
			return 0
		}
		if !strings.HasPrefix(args[0], "-") {
			name, args = args[0], args[1:]
		}
	}
	cmd, ok := lookup(name)
	if !ok || cmd.run == nil {
		fmt.Fprintf(e.stderr, "egressd: unknown command %q\n\n", name)
		printCommands(e.stderr)
		return 2
	}
	err := cmd.run(e, args)
	var ue usageError
	switch {
	case err == nil, errors.Is(err, errHelpShown):
		return 0
	case errors.Is(err, errUsageShown):
		return 2
	case errors.As(err, &ue):
		fmt.Fprintf(e.stderr, "egressd %s: %v\nusage: egressd %s %s\n(egressd %s -h shows the flags and an example)\n",
			name, err, name, cmd.synopsis, name)
		return 2
	case errors.Is(err, errChanged):
		fmt.Fprintf(e.stderr, "egressd %s: %v\n", name, err)
		return 1
	default:
		if name == "serve" {
			// The event log is JSON lines; a startup failure is one more.
			fatalLine(e.stderr, err)
		} else {
			fmt.Fprintf(e.stderr, "egressd %s: %v\n", name, err)
		}
		return 1
	}
}

func printCommands(w io.Writer) {
	fmt.Fprint(w, "egressd is a tenant-aware egress forward proxy.\n\nusage: egressd COMMAND [flags]\n\ncommands:\n")
	for _, c := range commands() {
		if c.hidden {
			continue
		}
		fmt.Fprintf(w, "  %-12s %s\n", c.name, c.summary)
	}
	fmt.Fprint(w, "\nWithout a command egressd runs `serve`. `egressd COMMAND -h` shows a command's flags and an example;\n`egressd --version` prints the version.\n")
}

var (
	// errHelpShown: -h printed the command's usage; exit 0.
	errHelpShown = errors.New("help shown")
	// errUsageShown: a flag error and the usage were printed; exit 2.
	errUsageShown = errors.New("usage shown")
	// errChanged: replay -fail-on-change found a changed decision; exit 1.
	errChanged = errors.New("decisions changed")
)

// usageError is a wrong invocation (exit 2), as opposed to a failure of
// the work itself (exit 1).
type usageError struct{ msg string }

func (u usageError) Error() string { return u.msg }

func usagef(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

// flags is a subcommand's flag set with the usage text of its table row.
type flags struct {
	*flag.FlagSet
	cmd command
	e   env
}

func newFlags(e env, name string) *flags {
	cmd, _ := lookup(name)
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	// The flag package's own messages are replaced by parse's, so that -h
	// goes to stdout and errors to stderr.
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return &flags{FlagSet: fs, cmd: cmd, e: e}
}

// parse parses args; the error is errHelpShown or errUsageShown when the
// usage was printed.
func (f *flags) parse(args []string) error {
	err := f.Parse(args)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, flag.ErrHelp):
		f.usage(f.e.stdout)
		return errHelpShown
	default:
		fmt.Fprintf(f.e.stderr, "egressd %s: %v\n", f.cmd.name, err)
		f.usage(f.e.stderr)
		return errUsageShown
	}
}

func (f *flags) usage(w io.Writer) {
	fmt.Fprintf(w, "usage: egressd %s %s\n\n%s\n", f.cmd.name, f.cmd.synopsis, f.cmd.summary)
	var any bool
	f.VisitAll(func(*flag.Flag) { any = true })
	if any {
		fmt.Fprint(w, "\nflags:\n")
		f.SetOutput(w)
		f.PrintDefaults()
		f.SetOutput(io.Discard)
	}
	if f.cmd.example != "" {
		fmt.Fprintf(w, "\nexample:\n  %s\n", f.cmd.example)
	}
}
