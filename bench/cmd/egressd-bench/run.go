package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"time"

	"github.com/egressd/egressd/bench/load"
)

// progressAfter is the run length above which a progress line is printed.
const progressAfter = 3 * time.Second

func cmdRun(args []string) int {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	var (
		cfg        load.Config
		pp         = fs.String("proxy-protocol", "v2", "PROXY header on every new connection: none, v1 or v2")
		linkID     = fs.Uint("link-id", 1001, "Azure LinkID sent in the v2 header's TLV 0xEE")
		size       = fs.String("size", "64MiB", "transfer size of the throughput modes (B, KiB, MiB, GiB)")
		mitmCA     = fs.String("mitm-ca", "", "PEM CA of a TLS-inspecting proxy; mitm is 'not available' without it")
		originAddr = fs.String("origin", "127.0.0.1:0", "origin listen address (a relay needs a fixed one)")
		originCert = fs.String("origin-cert", "", "origin certificate PEM (default: generate one)")
		originKey  = fs.String("origin-key", "", "origin key PEM")
		asJSON     = fs.Bool("json", false, "JSON lines on stdout, the table on stderr")
	)
	fs.StringVar(&cfg.Proxy, "proxy", "127.0.0.1:3128", "proxy (or relay) under test, host:port")
	fs.StringVar(&cfg.Mode, "mode", load.ModeHTTPRPS, "one of "+strings.Join(load.Modes, ", "))
	fs.StringVar(&cfg.Target, "name", "proxy", "name of the proxy under test, for the report")
	fs.BoolVar(&cfg.Relay, "relay", false, "the proxy is a plain TCP relay to --origin: skip CONNECT")
	fs.IntVar(&cfg.Concurrency, "concurrency", 16, "workers (connections in flight)")
	fs.DurationVar(&cfg.Duration, "duration", 10*time.Second, "time bound of the run (idle: of opening the tunnels)")
	fs.Int64Var(&cfg.Requests, "requests", 0, "count bound of the run (0: time bound only)")
	fs.IntVar(&cfg.ProxyPID, "proxy-pid", 0, "proxy PID for CPU time and RSS from /proc (0: not measured)")
	fs.IntVar(&cfg.Tunnels, "tunnels", 1000, "idle: tunnels to hold open")
	fs.DurationVar(&cfg.Hold, "hold", 2*time.Second, "idle: how long to hold them before sampling RSS")
	fs.StringVar(&cfg.ProxyMetrics, "proxy-metrics", "", "idle: a Go proxy's Prometheus URL (loopback), for goroutines, stack and heap per tunnel")
	fs.IntVar(&cfg.MITMColdHosts, "mitm-cold-hosts", 64, "mitm: distinct hosts (127.0.0.2 up) of the cold phase")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	var err error
	if cfg.ProxyProtocol, err = load.ParseProxyProtocol(*pp); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	if *linkID > 1<<32-1 {
		fmt.Fprintf(os.Stderr, "--link-id %d: want a uint32\n", *linkID)
		return 2
	}
	cfg.LinkID = uint32(*linkID)
	if cfg.Size, err = parseSize(*size); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	if *mitmCA != "" {
		if cfg.MITMRoots, err = load.ReadCertPool(*mitmCA); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
	}
	if cfg.Duration >= progressAfter || cfg.Requests > 0 {
		cfg.Progress, cfg.ProgressEvery = os.Stderr, 2*time.Second
	}

	cert, err := originCertificate(*originCert, *originKey)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	cold := 0
	if cfg.Mode == load.ModeMITM {
		cold = cfg.MITMColdHosts
	}
	origin, err := load.StartOrigin(*originAddr, cold, cert)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	defer origin.Close()

	// Ctrl-C ends the run early; the figures printed are still those of
	// completed operations.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	results, err := load.Run(ctx, cfg, origin)
	switch {
	case errors.Is(err, load.ErrMITMNotAvailable):
		results = []load.Result{{Mode: cfg.Mode, Target: cfg.Target, Note: "not available: " + err.Error()}}
	case err != nil:
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	return report(results, *asJSON, os.Stdout, os.Stderr)
}

func report(results []load.Result, asJSON bool, stdout, stderr io.Writer) int {
	table := stdout
	if asJSON {
		table = stderr
		if err := load.WriteJSON(stdout, results); err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
	}
	if err := load.WriteTable(table, results); err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	for _, r := range results {
		if r.Errors > 0 {
			return 1
		}
	}
	return 0
}

func originCertificate(certFile, keyFile string) (tls.Certificate, error) {
	switch {
	case certFile == "" && keyFile == "":
		return load.OriginCertificate()
	case certFile == "" || keyFile == "":
		return tls.Certificate{}, errors.New("--origin-cert and --origin-key go together")
	}
	return load.LoadCertificate(certFile, keyFile)
}

// parseSize reads "512", "64KiB", "16MiB" or "1GiB".
func parseSize(s string) (int64, error) {
	units := []struct {
		suffix string
		mult   int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"B", 1}}
	mult := int64(1)
	num := s
	for _, u := range units {
		if v, ok := strings.CutSuffix(s, u.suffix); ok {
			num, mult = v, u.mult
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 0 || n > load.MaxStreamBytes/mult {
		return 0, fmt.Errorf("--size %q: want a non-negative integer with an optional B, KiB, MiB or GiB, at most 16GiB", s)
	}
	return n * mult, nil
}
