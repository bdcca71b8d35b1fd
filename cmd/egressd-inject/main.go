// Command egressd-inject is the workload-side admission webhook
// (docs/inject.md). It is a command and an image of its own, apart from the
// proxy, so that the egressd binary carries no Kubernetes client code:
// `go version -m bin/egressd` lists no k8s.io module.
//
//	egressd-inject -config FILE   serve until SIGTERM or SIGINT
//	egressd-inject -version
//
// Exit codes: 0 success (and -h), 1 a runtime failure (bad config, port in
// use), 2 a usage error.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/egressd/egressd/inject"
	"github.com/egressd/egressd/metrics"
)

// version is set with -ldflags "-X main.version=..." (make build-inject,
// the Dockerfile); otherwise the toolchain's stamp is used.
var version string

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("egressd-inject", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "config file (docs/inject.md, \"Configuration\")")
	showVersion := fs.Bool("version", false, "print the version and exit")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: egressd-inject -config FILE\n\nthe workload-side admission webhook (docs/inject.md)\n\nflags:\n")
		fs.PrintDefaults()
		fmt.Fprintf(fs.Output(), "\nexample:\n  egressd-inject -config /etc/egressd-inject/config/config.yaml\n")
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *showVersion {
		fmt.Fprintf(stdout, "egressd-inject %s\n", buildVersion())
		return 0
	}
	if *path == "" || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "egressd-inject: -config FILE is required and takes no arguments")
		fs.Usage()
		return 2
	}
	log := newLogger(stderr)
	defer func() { _ = log.Sync() }()
	if err := serve(*path, log); err != nil {
		log.Error("egressd-inject exiting", zap.Error(err))
		return 1
	}
	return 0
}

func serve(path string, log *zap.Logger) error {
	cfg, err := inject.LoadConfig(path)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	log.Info("egressd-inject starting", zap.String("version", buildVersion()), zap.String("listen", cfg.Listen))
	return inject.Run(ctx, cfg, log, metrics.NewRegistry())
}

// newLogger writes JSON lines with the proxy's field names, so one log
// pipeline parses both.
func newLogger(w io.Writer) *zap.Logger {
	enc := zap.NewProductionEncoderConfig()
	enc.TimeKey = "ts"
	enc.EncodeTime = zapcore.ISO8601TimeEncoder
	enc.EncodeDuration = zapcore.StringDurationEncoder
	core := zapcore.NewCore(zapcore.NewJSONEncoder(enc), zapcore.Lock(zapcore.AddSync(w)), zapcore.InfoLevel)
	return zap.New(core)
}

func buildVersion() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			return bi.Main.Version
		}
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				return s.Value
			}
		}
	}
	return "dev"
}
