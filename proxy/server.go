// Package proxy is egressd's mechanism: the PROXY-protocol-aware listener,
// the HTTP/1 forward path, CONNECT tunnels, the upstream dialer and the
// drain on shutdown. Policy comes from package acl; this package only asks.
package proxy

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/egressd/egressd/acl"
	"github.com/egressd/egressd/metrics"
	"github.com/egressd/egressd/tlsinspect"
)

// Policy is what the proxy asks of the policy engine (*acl.Policy).
type Policy interface {
	Decide(id acl.Identity, cred acl.Credentials, t acl.Target) acl.Decision
	// NetworkTenant is the tenant a connection is counted against before
	// its first request: recognised without credentials.
	NetworkTenant(id acl.Identity) string
	CheckDial(tenant string, ip netip.Addr, t acl.Target) acl.Decision
	// CheckParent decides whether a tenant may reach its parent proxy.
	CheckParent(tenant string, up *acl.UpstreamProxy) acl.Decision
	Limits(tenant string) acl.Limits
	Inspection(tenant, host string) acl.Inspection
}

// Deps are the collaborators a Server is built from. Only Log and Policy
// are required; the rest default to the real network.
type Deps struct {
	Log *zap.Logger
	// Access receives the access log: JSON through AccessLog, or Squid's
	// native format written to AccessWriter when LogFormat is "squid".
	AccessLog    *zap.Logger
	AccessWriter io.Writer
	LogFormat    string
	Policy       Policy
	Metrics      *metrics.Metrics
	Resolver     Resolver
	Dial         DialFunc
	// Inspector mints certificates for TLS inspection; nil disables it.
	Inspector *tlsinspect.Inspector
	// UpstreamTLS returns the client config for https:// absolute-form
	// requests; the default verifies against the system roots.
	UpstreamTLS func(serverName string) *tls.Config
}

// Server is one proxy listener and everything in flight on it.
type Server struct {
	cfg     Config
	pv      provisioned // cfg parsed into typed values, once
	log     *zap.Logger
	access  accessLogger
	metrics observer
	policy  atomic.Pointer[policyBox]
	dialer  dialer
	pool    *upstreamPool
	upTLS   func(string) *tls.Config
	limits  *tenantLimiter
	// tenantConns counts open connections per tenant (connlimit.go).
	tenantConns *connCounts
	inspector   atomic.Pointer[tlsinspect.Inspector]
	learn       spliceLearner // hosts spliced by learned splicing

	idPrefix string
	idSeq    atomic.Uint64
	// headerLog rate-limits the warning for refused PROXY headers.
	headerLog *logSampler
	// squidLog is set when the access log is a Squid format, which is
	// the only reader of a response's Content-Type.
	squidLog bool

	mu       sync.Mutex
	ln       net.Listener
	conns    map[*clientConn]struct{}
	open     atomic.Int64
	draining atomic.Bool
	// unready is set first on SIGTERM: probes fail while the listener
	// still accepts, so the load balancer stops sending new flows before
	// connections would be refused.
	unready atomic.Bool
	wg      sync.WaitGroup
}

type policyBox struct{ p Policy }

// New builds a Server from a section that config.Parse has already given
// its defaults and validated (code that builds a Config by hand calls
// SetDefaults and Validate itself); New only provisions it. It does not
// listen.
func New(cfg Config, d Deps) (*Server, error) {
	pv, err := cfg.provision()
	if err != nil {
		return nil, err
	}
	if d.Log == nil || d.Policy == nil {
		return nil, errors.New("proxy: Deps.Log and Deps.Policy are required")
	}
	if d.AccessLog == nil {
		d.AccessLog = d.Log
	}
	if d.AccessWriter == nil {
		d.AccessWriter = io.Discard
	}
	access, err := newAccessLogger(d.LogFormat, d.AccessLog, d.AccessWriter)
	if err != nil {
		return nil, err
	}
	if d.Resolver == nil {
		d.Resolver = net.DefaultResolver
	}
	if d.Dial == nil {
		nd := &net.Dialer{KeepAliveConfig: keepAlive(cfg.TCPKeepAlive)}
		d.Dial = nd.DialContext
	}
	if d.UpstreamTLS == nil {
		d.UpstreamTLS = func(name string) *tls.Config {
			return &tls.Config{ServerName: name, NextProtos: []string{"http/1.1"}, MinVersion: tls.VersionTLS12}
		}
	}
	var seed [4]byte
	rand.Read(seed[:])
	s := &Server{
		cfg:      cfg,
		pv:       pv,
		log:      d.Log,
		access:   access,
		metrics:  observer{d.Metrics},
		upTLS:    d.UpstreamTLS,
		idPrefix: hex.EncodeToString(seed[:]),
		conns:    make(map[*clientConn]struct{}),
		limits:   newTenantLimiter(),

		tenantConns: newConnCounts(),

		headerLog: newHeaderLogSampler(),
		squidLog:  strings.HasPrefix(d.LogFormat, "squid"),
	}
	s.dialer = dialer{resolver: d.Resolver, dial: d.Dial, timeout: cfg.DialTimeout, observe: s.observeDial}
	s.pool = newUpstreamPool(cfg.MaxIdleUpstreamPerHost, cfg.UpstreamIdleTimeout)
	s.policy.Store(&policyBox{d.Policy})
	s.inspector.Store(d.Inspector)
	s.metrics.SetConnectionLimit(cfg.MaxConnections)
	return s, nil
}

func keepAlive(d time.Duration) net.KeepAliveConfig {
	// Probe every d/4 after d idle and give up after 4 misses, so a dead
	// peer is noticed and a live idle flow never reaches the PLS cutoff.
	return net.KeepAliveConfig{Enable: true, Idle: d, Interval: max(d/4, time.Second), Count: 4}
}

// SetPolicy swaps the policy for new requests. With revoke_on_reload
// (the default) every open tunnel and keep-alive connection is then
// re-decided under p and closed when p refuses it; otherwise they keep
// the decision they got.
func (s *Server) SetPolicy(p Policy) {
	s.policy.Store(&policyBox{p})
	if s.cfg.RevokeOnReload == nil || *s.cfg.RevokeOnReload {
		s.revoke(p)
	}
}

func (s *Server) currentPolicy() Policy { return s.policy.Load().p }

// SetInspector swaps the TLS inspection CA for new tunnels (nil turns
// inspection off); tunnels already bumped keep the certificate they got.
func (s *Server) SetInspector(i *tlsinspect.Inspector) { s.inspector.Store(i) }

// Ready reports whether the server wants new traffic; it turns false as soon
// as a drain starts so readiness probes take the pod out of rotation first.
func (s *Server) Ready() bool { return !s.unready.Load() }

// BeginDrain fails readiness and load balancer probes but keeps serving;
// call Shutdown after the load balancer has had time to notice.
func (s *Server) BeginDrain() { s.unready.Store(true) }

// Listen opens the proxy port with the configured TCP keepalives on every
// accepted connection; on Linux they are set once on the listening socket
// and inherited, together with TCP_DEFER_ACCEPT (see listenConfig).
func (s *Server) Listen() (net.Listener, error) {
	lc := listenConfig(keepAlive(s.cfg.TCPKeepAlive), s.cfg.ProxyHeaderTimeout)
	ln, err := lc.Listen(context.Background(), "tcp", s.cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", s.cfg.Listen, err)
	}
	return ln, nil
}

// ErrServerClosed is returned by Serve after Shutdown.
var ErrServerClosed = errors.New("proxy: server closed")

// Serve accepts connections on ln until Shutdown. Keepalives are the
// listener's: use Listen for the configured ones.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.draining.Load() {
		s.mu.Unlock()
		ln.Close()
		return ErrServerClosed
	}
	s.ln = ln
	s.mu.Unlock()
	var backoff time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if s.draining.Load() {
				return ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) {
				// Out of descriptors or similar: back off instead of spinning.
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				s.log.Warn("accept failed; backing off", zap.Error(err), zap.Duration("backoff", backoff))
				time.Sleep(backoff)
				continue
			}
			return fmt.Errorf("accept: %w", err)
		}
		backoff = 0
		if s.open.Load() >= s.acceptLimit() {
			s.metrics.LimitRejected(metrics.ScopeGlobal, "")
			c.Write(overloaded)
			c.Close()
			continue
		}
		s.open.Add(1)
		s.wg.Add(1)
		go s.serveConn(c)
	}
}

// acceptLimit is how many connections the listener takes. With PROXY
// headers it is max_connections plus a small reserve, so that when the
// tenants have filled max_connections the load balancer's probes (LOCAL
// headers) are still read and answered, and the node is not taken out
// of rotation for being busy; serveConn refuses anything else over
// max_connections once its header is read.
func (s *Server) acceptLimit() int64 {
	limit := int64(s.cfg.MaxConnections)
	if s.cfg.ProxyProtocol == PPOff {
		return limit // no header tells a probe apart
	}
	return limit + min(max(limit/100, 8), 64)
}

var overloaded = []byte("HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: 44\r\nX-Proxy-Error: connection_limit\r\nConnection: close\r\n\r\negressd: Service Unavailable: too busy now\r\n")

// Shutdown stops accepting, lets requests in flight finish and tunnels run
// until ctx is done, then closes what is left. It returns ctx.Err() when it
// had to cut connections.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.unready.Store(true)
	s.draining.Store(true)
	if s.ln != nil {
		s.ln.Close()
	}
	s.mu.Unlock()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		s.closeIdle()
		if s.open.Load() == 0 {
			s.wg.Wait()
			s.pool.closeAll()
			return nil
		}
		select {
		case <-ctx.Done():
			s.mu.Lock()
			n := len(s.conns)
			for c := range s.conns {
				c.forceClose()
			}
			s.mu.Unlock()
			s.log.Warn("drain deadline reached; closed remaining connections", zap.Int("connections", n))
			s.wg.Wait()
			s.pool.closeAll()
			return ctx.Err()
		case <-tick.C:
		}
	}
}

func (s *Server) closeIdle() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		if c.state.CompareAndSwap(stateIdle, stateClosed) {
			c.raw.Close()
		}
	}
}

func (s *Server) track(c *clientConn, add bool) {
	s.mu.Lock()
	if add {
		s.conns[c] = struct{}{}
	} else {
		delete(s.conns, c)
	}
	s.mu.Unlock()
}

func (s *Server) newRequestID() string {
	return s.idPrefix + "-" + strconv.FormatUint(s.idSeq.Add(1), 36)
}

// OpenConnections is the number of client connections being served.
func (s *Server) OpenConnections() int64 { return s.open.Load() }
