package main

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/egressd/egressd/bench/results"
)

func cmdReport(args []string) int {
	fs := flag.NewFlagSet("report", flag.ContinueOnError)
	in := fs.String("in", "", "JSON lines from `run --json` over all rounds")
	commands := fs.String("commands", "", "file listing the commands that were run, one a line")
	notes := fs.String("notes", "", "file of notes (skipped proxies, versions), one a line")
	profiles := fs.String("profiles", "", "directory of egressd-MODE.top files (go tool pprof -top) to include")
	out := fs.String("out", "bench/RESULTS.md", "markdown to write")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if err := writeReport(*in, *commands, *notes, *profiles, *out); err != nil {
		fmt.Fprintf(os.Stderr, "report: %v\n", err)
		return 1
	}
	return 0
}

func writeReport(in, commandsFile, notesFile, profileDir, out string) error {
	f, err := os.Open(in)
	if err != nil {
		return fmt.Errorf("open results: %w", err)
	}
	defer f.Close()
	rs, err := results.Read(f)
	if err != nil {
		return err
	}
	meta := results.Meta{Date: time.Now().UTC().Format("2006-01-02 15:04 MST"), Machine: machine()}
	if meta.Commands, err = readLines(commandsFile); err != nil {
		return err
	}
	if meta.Notes, err = readLines(notesFile); err != nil {
		return err
	}
	if profileDir != "" {
		tops, _ := filepath.Glob(filepath.Join(profileDir, "egressd-*.top")) // the pattern is well formed
		for _, f := range tops {
			data, err := os.ReadFile(f)
			if err != nil {
				return fmt.Errorf("read profile: %w", err)
			}
			mode := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(f), "egressd-"), ".top")
			meta.Profiles = append(meta.Profiles, results.Profile{Mode: mode, Top: string(data)})
		}
	}
	var buf bytes.Buffer
	if err := results.WriteMarkdown(&buf, meta, results.Summarize(rs)); err != nil {
		return err
	}
	if err := os.WriteFile(out, buf.Bytes(), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", out, err)
	}
	return nil
}

func readLines(file string) ([]string, error) {
	if file == "" {
		return nil, nil
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", file, err)
	}
	var lines []string
	for l := range strings.Lines(string(data)) {
		if l = strings.TrimRight(l, "\n"); l != "" {
			lines = append(lines, l)
		}
	}
	return lines, nil
}

// machine describes the host from /proc; a missing entry says "unknown".
func machine() []string {
	model, cpus := "unknown", 0
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			k, v, ok := strings.Cut(sc.Text(), ":")
			if !ok {
				continue
			}
			switch strings.TrimSpace(k) {
			case "processor":
				cpus++
			case "model name":
				model = strings.TrimSpace(v)
			}
		}
		_ = f.Close()
	}
	kernel := "unknown"
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		kernel = strings.TrimSpace(string(b))
	}
	return []string{
		fmt.Sprintf("nproc: %d", cpus),
		"CPU: " + model,
		"kernel: Linux " + kernel,
		"Go: " + runtime.Version(),
	}
}
