package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"reflect"
	"runtime"
	"syscall"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/egressd/egressd/acl"
	"github.com/egressd/egressd/internal/config"
	"github.com/egressd/egressd/metrics"
	"github.com/egressd/egressd/proxy"
	"github.com/egressd/egressd/tlsinspect"
)

// configPollInterval is how often the config file is re-read to notice a
// change. Polling the path (rather than watching the inode) is what sees a
// Kubernetes ConfigMap update, which swaps a symlink instead of writing.
const configPollInterval = 2 * time.Second

func serve(e env, args []string) error {
	stdout, stderr := e.stdout, e.stderr
	fs := newFlags(e, "serve")
	path := fs.String("config", "", "config file (default: the embedded development config)")
	if err := fs.parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	cfg, raw, err := loadConfig(*path)
	if err != nil {
		return err
	}
	log, err := newLogger(cfg.Log.Level, stderr)
	if err != nil {
		return err
	}
	defer log.Sync()
	if *path == "" {
		log.Warn("running with the embedded development config (loopback only); pass -config FILE in production")
	}
	accessOut, closeAccess, err := openAccessOutput(cfg.Log.Output, *cfg.Log.FlushInterval, stdout, stderr)
	if err != nil {
		return err
	}
	defer closeAccess()

	reg := metrics.NewRegistry()
	m := metrics.New(reg, metrics.BuildInfo{Version: buildVersion(), GoVersion: runtime.Version()})
	pol, insp, err := buildPolicy(cfg, m)
	if err != nil {
		return err
	}
	m.SetTenants(pol.Tenants())
	m.SetRules(pol.RuleNames())
	m.ConfigLoaded(hash(raw), nil)
	srv, err := proxy.New(cfg.Proxy, proxy.Deps{
		Metrics:      m,
		Inspector:    insp,
		Log:          log,
		AccessLog:    newAccessLogger(accessOut),
		AccessWriter: accessOut,
		LogFormat:    cfg.Log.Format,
		Policy:       pol,
	})
	if err != nil {
		return err
	}
	ln, err := srv.Listen()
	if err != nil {
		return err
	}
	adminLn, err := net.Listen("tcp", cfg.Admin.Listen)
	if err != nil {
		ln.Close()
		return fmt.Errorf("listen admin: %w", err)
	}
	admin := &http.Server{
		Handler:           proxy.AdminHandler(srv.Ready, metrics.Handler(reg), cfg.Admin.Pprof),
		ReadHeaderTimeout: 5 * time.Second,
		ErrorLog:          zap.NewStdLog(log),
	}
	go admin.Serve(adminLn)
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	log.Info("egressd started",
		zap.String("version", buildVersion()),
		zap.String("proxy", ln.Addr().String()),
		zap.String("admin", adminLn.Addr().String()),
		zap.String("proxy_protocol", string(cfg.Proxy.ProxyProtocol)),
		zap.Strings("tenants", pol.Tenants()),
		zap.String("config_hash", hash(raw)))

	logFeeds(log, pol)
	r := &reloader{path: *path, log: log, srv: srv, metrics: m, last: hash(raw), proxyCfg: cfg.Proxy, files: cfg.Files(), feeds: cfg.ACL.FeedFiles()}
	r.lastFiles, r.feedStamp = hashFiles(r.files), fileStamp(r.feeds)
	signals := make(chan os.Signal, 2)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	defer signal.Stop(signals)
	poll := time.NewTicker(configPollInterval)
	defer poll.Stop()
	for {
		select {
		case err := <-serveErr:
			admin.Close()
			return err
		case <-poll.C:
			if *path != "" {
				r.reload(false)
			}
		case sig := <-signals:
			if sig == syscall.SIGHUP {
				r.reload(true)
				continue
			}
			return drain(log, srv, admin, cfg.Proxy, signals)
		}
	}
}

// drain fails readiness, stops accepting, and lets work in flight finish
// within the deadline. A second signal exits at once.
func drain(log *zap.Logger, srv *proxy.Server, admin *http.Server, cfg proxy.Config, signals <-chan os.Signal) error {
	srv.BeginDrain()
	if cfg.DrainDelay > 0 {
		log.Info("failing probes before closing the listener", zap.Duration("drain_delay", cfg.DrainDelay))
		select {
		case <-time.After(cfg.DrainDelay):
		case sig := <-signals:
			admin.Close()
			return fmt.Errorf("second signal (%s) during drain: exiting now", sig)
		}
	}
	log.Info("draining", zap.Duration("deadline", cfg.DrainTimeout), zap.Int64("connections", srv.OpenConnections()))
	ctx, cancel := context.WithTimeout(context.Background(), cfg.DrainTimeout)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- srv.Shutdown(ctx) }()
	select {
	case err := <-done:
		admin.Close()
		if errors.Is(err, context.DeadlineExceeded) {
			log.Warn("drain deadline passed; remaining connections were closed")
		}
		log.Info("stopped")
		return nil
	case sig := <-signals:
		admin.Close()
		return fmt.Errorf("second signal (%s) during drain: exiting now", sig)
	}
}

// reloader swaps the policy when the config file, or a file it names
// (a password file, the CA), changes. An invalid result is logged and
// counted, and the policy in force stays.
type reloader struct {
	path      string
	log       *zap.Logger
	srv       *proxy.Server
	metrics   *metrics.Metrics
	last      string // hash of the config file
	files     []string
	lastFiles string // hash of the content of files
	// feeds are the deny feed files, stamped by size and time instead of
	// hashed: a feed can be tens of MB, too much to read every poll.
	feeds     []string
	feedStamp string
	proxyCfg  proxy.Config
}

func (r *reloader) reload(forced bool) {
	if r.path == "" {
		r.log.Info("reload requested, but the embedded config cannot change")
		return
	}
	raw, err := os.ReadFile(r.path)
	if err != nil {
		r.metrics.ConfigLoaded(r.last, err)
		r.log.Error("config reload failed: keeping the policy in force", zap.Error(err))
		return
	}
	h := hash(raw)
	cause := metrics.ReloadSignal
	switch {
	case forced:
	case h != r.last:
		cause = metrics.ReloadConfig
	case hashFiles(r.files) != r.lastFiles, fileStamp(r.feeds) != r.feedStamp:
		cause = metrics.ReloadReferencedFile
	default:
		return
	}
	r.metrics.ReloadTriggered(cause)
	r.last = h
	cfg, err := config.Parse(raw, r.path)
	var pol *acl.Policy
	var insp *tlsinspect.Inspector
	if err == nil {
		// Hashed before they are read, so a file that changes while the
		// policy is built is seen again at the next poll.
		r.files, r.feeds = cfg.Files(), cfg.ACL.FeedFiles()
		r.lastFiles, r.feedStamp = hashFiles(r.files), fileStamp(r.feeds)
		pol, insp, err = buildPolicy(cfg, r.metrics)
	} else {
		r.lastFiles, r.feedStamp = hashFiles(r.files), fileStamp(r.feeds)
	}
	r.metrics.ConfigLoaded(h, err)
	if err != nil {
		r.log.Error("config reload failed: keeping the policy in force", zap.String("config_hash", h),
			zap.Stringer("cause", cause), zap.Error(err))
		return
	}
	r.metrics.SetTenants(pol.Tenants())
	r.metrics.SetRules(pol.RuleNames())
	r.srv.SetPolicy(pol)
	r.srv.SetInspector(insp)
	// Both sides come from config.Parse, defaults applied: compare the
	// typed values, not their printed form. Logged before "config
	// reloaded", so whoever sees that line has seen the warning too.
	if !reflect.DeepEqual(cfg.Proxy, r.proxyCfg) {
		r.log.Warn("proxy: section changed; listener settings take effect at the next restart")
	}
	r.log.Info("config reloaded", zap.String("config_hash", h), zap.Stringer("cause", cause), zap.Strings("tenants", pol.Tenants()))
	logFeeds(r.log, pol)
}

// hashFiles fingerprints the content of files. A file that cannot be read
// counts as its error, so one that appears or disappears is a change too.
// Reading follows symlinks, so a Secret's ..data swap is a change.
func hashFiles(files []string) string {
	sum := sha256.New()
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			b = []byte("unreadable: " + err.Error())
		}
		n := sha256.Sum256(b)
		sum.Write([]byte(f))
		sum.Write(n[:])
	}
	return hex.EncodeToString(sum.Sum(nil)[:8])
}

// buildPolicy compiles what a config decides per request: the policy and
// the inspection CA. serve, reload and check share it, so a file that
// passes `egressd check` is a file a reload accepts.
func buildPolicy(cfg config.Config, m *metrics.Metrics) (*acl.Policy, *tlsinspect.Inspector, error) {
	pol, err := acl.Compile(cfg.ACL)
	if err != nil {
		return nil, nil, err
	}
	insp, err := loadInspector(cfg.TLS, m)
	if err != nil {
		return nil, nil, err
	}
	return pol, insp, nil
}

// loadInspector loads the inspection CA, or returns nil when inspection is off.
func loadInspector(cfg tlsinspect.Config, m *metrics.Metrics) (*tlsinspect.Inspector, error) {
	if !cfg.Enabled() {
		return nil, nil
	}
	insp, err := tlsinspect.Load(cfg, inspectObserver{m})
	if err == nil {
		m.SetCAExpiry(insp.CAExpiry())
	}
	return insp, err
}

// inspectObserver feeds certificate minting and cache events to metrics.
type inspectObserver struct{ m *metrics.Metrics }

func (o inspectObserver) MintDuration(d time.Duration) { o.m.ObserveMint(d) }
func (o inspectObserver) CacheHit()                    { o.m.CertCacheLookup(true) }
func (o inspectObserver) CacheMiss()                   { o.m.CertCacheLookup(false) }
func (o inspectObserver) CacheSize(n int)              { o.m.SetCertCacheSize(n) }

func loadConfig(path string) (config.Config, []byte, error) {
	if path == "" {
		cfg, err := config.Default()
		return cfg, config.DefaultYAML(), err
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return config.Config{}, nil, fmt.Errorf("read config: %w", err)
	}
	cfg, err := config.Parse(raw, path)
	return cfg, raw, err
}

func hash(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}

func newLogger(level string, w io.Writer) (*zap.Logger, error) {
	lvl, err := zapcore.ParseLevel(level)
	if err != nil {
		return nil, err
	}
	core := zapcore.NewCore(zapcore.NewJSONEncoder(eventEncoderConfig()), zapcore.Lock(zapcore.AddSync(w)), lvl)
	return zap.New(core), nil
}

// eventEncoderConfig is the event log's encoding. Durations are written
// with their unit ("10s", not 10), so a reader never guesses the scale.
func eventEncoderConfig() zapcore.EncoderConfig {
	enc := zap.NewProductionEncoderConfig()
	enc.TimeKey = "ts"
	enc.EncodeTime = zapcore.ISO8601TimeEncoder
	enc.EncodeDuration = zapcore.StringDurationEncoder
	return enc
}

// fatalLine writes a failure that ends the process as one JSON event
// line, like every other line on stderr, so a log pipeline parses it. It
// writes through the core rather than Logger.Fatal, which would exit
// before deferred cleanup ran.
func fatalLine(w io.Writer, err error) {
	core := zapcore.NewCore(zapcore.NewJSONEncoder(eventEncoderConfig()), zapcore.AddSync(w), zapcore.DebugLevel)
	core.Write(zapcore.Entry{Level: zapcore.FatalLevel, Time: time.Now(), Message: "egressd exiting"},
		[]zapcore.Field{zap.String("version", buildVersion()), zap.Error(err)})
	core.Sync()
}

// newAccessLogger writes one JSON object per line, unsampled: an access log
// that drops lines under load is not an audit trail.
func newAccessLogger(w io.Writer) *zap.Logger {
	enc := zap.NewProductionEncoderConfig()
	enc.TimeKey = "ts"
	enc.EncodeTime = zapcore.ISO8601TimeEncoder
	enc.LevelKey = ""
	enc.CallerKey = ""
	return zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(enc), zapcore.Lock(zapcore.AddSync(w)), zapcore.InfoLevel))
}

// openAccessOutput opens the access log. With a flush interval the lines
// collect in a 256 KiB buffer and go out together at least that often:
// one write(2) per line was one of the five syscalls of a small proxied
// request (strace -c, issue 18). close flushes what is left.
func openAccessOutput(out string, flush time.Duration, stdout, stderr io.Writer) (io.Writer, func(), error) {
	var w io.Writer
	closeFile := func() {}
	switch out {
	case "stdout":
		w = stdout
	case "stderr":
		w = stderr
	default:
		f, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640)
		if err != nil {
			return nil, nil, fmt.Errorf("open access log: %w", err)
		}
		w, closeFile = f, func() { f.Close() }
	}
	if flush <= 0 {
		return w, closeFile, nil
	}
	bw := &zapcore.BufferedWriteSyncer{WS: zapcore.AddSync(w), Size: 256 << 10, FlushInterval: flush}
	return bw, func() { bw.Stop(); closeFile() }, nil
}
