package load

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"
	"time"
)

// Mode names, as given to --mode.
const (
	ModeHTTPRPS           = "http-rps"
	ModeConnectRate       = "connect-rate"
	ModeConnectThroughput = "connect-throughput"
	ModeHTTPThroughput    = "http-throughput"
	ModeMITM              = "mitm"
	ModeMITMH2            = "mitm-h2"
	ModeIdle              = "idle"
)

// Modes lists every mode in the order compare.sh runs them.
var Modes = []string{ModeHTTPRPS, ModeConnectRate, ModeConnectThroughput, ModeHTTPThroughput, ModeMITM, ModeMITMH2, ModeIdle}

// maxOpsPerWorker bounds a duration-only run by count as well as by time.
const maxOpsPerWorker = 10_000_000

// Sentinel errors for configurations a run refuses.
var (
	ErrUnknownMode      = errors.New("load: unknown mode")
	ErrMITMNotAvailable = errors.New("load: mitm not available: it needs a proxy that does TLS inspection and --mitm-ca naming the CA it signs with")
	ErrBadConfig        = errors.New("load: bad configuration")
)

// Config is one run against one proxy.
type Config struct {
	Mode   string
	Target string // a name for the proxy under test, for the report
	// Proxy is the host:port of the proxy (or relay) under test.
	Proxy string
	// Relay says Proxy is a plain TCP relay to the origin: CONNECT is skipped.
	Relay bool
	// Concurrency is the number of workers (connections in flight).
	Concurrency int
	// Duration bounds the run in time; Requests (when > 0) in count too.
	// Whichever comes first ends the run.
	Duration time.Duration
	Requests int64
	// ProxyProtocol is 0 (no header), 1 or 2; LinkID goes in the v2 Azure TLV.
	ProxyProtocol byte
	LinkID        uint32
	// ProxyPID, when > 0, is read from /proc for CPU time and RSS.
	ProxyPID int
	// Size is the transfer size of the throughput modes, in bytes.
	Size int64
	// Tunnels and Hold are the idle mode's tunnel count and holding time.
	Tunnels int
	Hold    time.Duration
	// ProxyMetrics, when set, is a Prometheus endpoint of a Go proxy
	// (http://127.0.0.1:PORT/metrics): the idle mode reads its goroutine
	// count and stack and heap bytes with the RSS samples, so the memory of
	// a tunnel can be told apart by kind.
	ProxyMetrics string
	// MITMRoots trusts the inspecting proxy's CA; MITMColdHosts is how many
	// distinct hosts the cold phase visits (each mints one leaf).
	MITMRoots     *x509.CertPool
	MITMColdHosts int
	// Progress, when set, gets a progress line every ProgressEvery.
	Progress      io.Writer
	ProgressEvery time.Duration
}

// ParseProxyProtocol maps the --proxy-protocol flag to a header version.
func ParseProxyProtocol(s string) (byte, error) {
	switch s {
	case "none":
		return 0, nil
	case "v1":
		return 1, nil
	case "v2":
		return 2, nil
	}
	return 0, fmt.Errorf("%w: --proxy-protocol %q: want none, v1 or v2", ErrBadConfig, s)
}

func (c Config) validate() error {
	var errs []error
	if c.Proxy == "" {
		errs = append(errs, errors.New("proxy address is empty"))
	}
	if c.Concurrency < 1 {
		errs = append(errs, fmt.Errorf("concurrency %d: want at least 1", c.Concurrency))
	}
	if c.Duration <= 0 {
		errs = append(errs, fmt.Errorf("duration %s: want a positive bound", c.Duration))
	}
	if c.Requests < 0 {
		errs = append(errs, fmt.Errorf("requests %d: want 0 (no count bound) or more", c.Requests))
	}
	if c.Size < 0 || c.Size > MaxStreamBytes {
		errs = append(errs, fmt.Errorf("size %d: want 0 to %d bytes", c.Size, int64(MaxStreamBytes)))
	}
	if c.Mode == ModeIdle && c.Tunnels < 1 {
		errs = append(errs, fmt.Errorf("tunnels %d: want at least 1", c.Tunnels))
	}
	if c.Mode == ModeMITM && (c.MITMColdHosts < 1 || c.MITMColdHosts > MaxColdHosts) {
		errs = append(errs, fmt.Errorf("mitm cold hosts %d: want 1 to %d", c.MITMColdHosts, MaxColdHosts))
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: %w", ErrBadConfig, errors.Join(errs...))
	}
	return nil
}

// Run measures one mode against one proxy, using origin as the destination.
// It returns one result, or two for mitm (cold and warm) and mitm-h2 (h2
// streams and HTTP/1.1 keep-alive).
func Run(ctx context.Context, cfg Config, origin *Origin) ([]Result, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	hw := &headerWriter{proxyAddr: cfg.Proxy, version: cfg.ProxyProtocol, linkID: cfg.LinkID}
	hw.dialer.Timeout = dialTimeout
	r := &runner{cfg: cfg, origin: origin, hw: hw}
	switch cfg.Mode {
	case ModeHTTPRPS:
		return r.one(ModeHTTPRPS, r.httpOp(false, PathSmall, SmallSize))
	case ModeHTTPThroughput:
		return r.one(ModeHTTPThroughput, r.httpOp(false, streamPath(cfg.Size), cfg.Size))
	case ModeConnectRate:
		return r.one(ModeConnectRate, r.httpOp(true, PathSmall, SmallSize))
	case ModeConnectThroughput:
		return r.one(ModeConnectThroughput, r.httpOp(true, streamPath(cfg.Size), cfg.Size))
	case ModeMITM:
		return r.mitm(ctx)
	case ModeMITMH2:
		return r.mitmH2(ctx)
	case ModeIdle:
		res, err := r.idle(ctx)
		return []Result{res}, err
	}
	return nil, fmt.Errorf("%w %q: want one of %v", ErrUnknownMode, cfg.Mode, Modes)
}

func streamPath(n int64) string { return PathStream + "?bytes=" + strconv.FormatInt(n, 10) }

type runner struct {
	cfg    Config
	origin *Origin
	hw     *headerWriter
}

// op is one operation of a worker; it returns the payload bytes it moved.
type op func(ctx context.Context) (int64, error)

// newOp builds one worker's operation and its cleanup.
type newOp func() (op, func())

func (r *runner) one(mode string, mk newOp) ([]Result, error) {
	ctx := context.Background()
	res := r.measure(ctx, mode, r.cfg.Concurrency, r.cfg.Requests, r.cfg.Duration, mk)
	return []Result{res}, nil
}

// measure runs workers until the time or count bound and samples /proc
// around them.
func (r *runner) measure(parent context.Context, mode string, workers int, count int64, d time.Duration, mk newOp) Result {
	t := &tally{}
	m := measurement{mode: mode, target: r.cfg.Target, concurrency: workers, t: t}
	var err error
	m.clientBefore, err = readProc("self")
	m.clientSampleOK = err == nil
	m.proxyBefore = r.sampleProxy(t)

	ctx, cancel := context.WithTimeout(parent, d)
	defer cancel()
	stopProgress := r.progress(mode, t)
	var issued int64
	var issuedMu sync.Mutex
	take := func() bool {
		issuedMu.Lock()
		defer issuedMu.Unlock()
		if count > 0 && issued >= count {
			return false
		}
		issued++
		return true
	}
	start := time.Now()
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			do, cleanup := mk()
			defer cleanup()
			lats := make([]time.Duration, 0, 1024)
			defer func() { t.addLatencies(lats) }()
			for i := 0; i < maxOpsPerWorker && ctx.Err() == nil && take(); i++ {
				t0 := time.Now()
				n, err := do(ctx)
				if err != nil {
					if ctx.Err() != nil {
						// Cut off by the clock: neither a success nor a failure.
						return
					}
					t.recordError(err)
					continue
				}
				lats = append(lats, time.Since(t0))
				t.ops.Add(1)
				t.bytes.Add(n)
			}
		}()
	}
	wg.Wait()
	m.elapsed = time.Since(start)
	stopProgress()
	m.proxyAfter = r.sampleProxy(t)
	if after, err := readProc("self"); err == nil && m.clientSampleOK {
		m.clientAfter = after
	} else {
		m.clientSampleOK = false
	}
	return m.result()
}

// sampleProxy reads the proxy's /proc entry; a failure is a run error
// because the per-CPU figures would be wrong.
func (r *runner) sampleProxy(t *tally) *procSample {
	if r.cfg.ProxyPID <= 0 {
		return nil
	}
	s, err := readProc(strconv.Itoa(r.cfg.ProxyPID))
	if err != nil {
		t.recordError(fmt.Errorf("sample proxy: %w", err))
		return nil
	}
	return &s
}

// progress prints a line every ProgressEvery until the returned stop is called.
func (r *runner) progress(mode string, t *tally) (stop func()) {
	if r.cfg.Progress == nil || r.cfg.ProgressEvery <= 0 {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		start := time.Now()
		tick := time.NewTicker(r.cfg.ProgressEvery)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case now := <-tick.C:
				el := now.Sub(start).Seconds()
				ops := t.ops.Load()
				fmt.Fprintf(r.cfg.Progress, "%s %s: %.0fs ops=%d errors=%d ops/s=%.0f MiB/s=%.1f\n",
					mode, r.cfg.Target, el, ops, t.errs.Load(), float64(ops)/el, float64(t.bytes.Load())/mib/el)
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}
