// Package goproxybase is the bench's reference point: a default
// goproxy.NewProxyHttpServer(), the library the design card started from,
// with only the changes a benchmark needs. It is not egressd and has none of
// its policy: it shows what the library costs before egressd's work.
//
// Its default transport skips upstream certificate verification; that is
// acceptable only because the bench's origin is on loopback. The MITM
// variant verifies the origin against the roots it is given.
package goproxybase

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/elazarl/goproxy"
	"github.com/pires/go-proxyproto"
)

// maxCachedLeaves bounds the MITM leaf cache.
const maxCachedLeaves = 10_000

// Options changes the default server.
type Options struct {
	// MITMCA, when set, inspects every CONNECT with leaves signed by it.
	// Never goproxy's built-in GoproxyCa.
	MITMCA *tls.Certificate
	// UpstreamRoots verifies the origin in MITM mode.
	UpstreamRoots *x509.CertPool
	// Log receives goproxy's own messages; nil discards them.
	Log io.Writer
}

// New returns the default goproxy server, minus two environment lookups: its
// transport and CONNECT dialer would otherwise chain to HTTP(S)_PROXY, and
// a bench run must never leave loopback.
func New(opts Options) *goproxy.ProxyHttpServer {
	p := goproxy.NewProxyHttpServer()
	p.Tr.Proxy = nil
	p.ConnectDial = nil
	w := opts.Log
	if w == nil {
		w = io.Discard
	}
	p.Logger = log.New(w, "goproxy: ", log.LstdFlags)
	if opts.MITMCA != nil {
		p.Tr.TLSClientConfig = &tls.Config{RootCAs: opts.UpstreamRoots, MinVersion: tls.VersionTLS12}
		p.CertStore = &leafCache{leaves: map[string]*tls.Certificate{}}
		action := &goproxy.ConnectAction{Action: goproxy.ConnectMitm, TLSConfig: goproxy.TLSConfigFromCA(opts.MITMCA)}
		p.OnRequest().HandleConnect(goproxy.FuncHttpsHandler(func(host string, _ *goproxy.ProxyCtx) (*goproxy.ConnectAction, string) {
			return action, host
		}))
	}
	return p
}

// Serve serves p on ln, accepting an optional PROXY header on each
// connection (the header is parsed and ignored, which is the least any
// PLS-facing proxy must do). It returns when ln is closed.
func Serve(ln net.Listener, p http.Handler) (*http.Server, <-chan error) {
	pln := &proxyproto.Listener{
		Listener:          ln,
		ConnPolicy:        func(proxyproto.ConnPolicyOptions) (proxyproto.Policy, error) { return proxyproto.USE, nil },
		ReadHeaderTimeout: 5 * time.Second,
	}
	srv := &http.Server{Handler: p, ReadHeaderTimeout: 10 * time.Second, ErrorLog: log.New(io.Discard, "", 0)}
	done := make(chan error, 1)
	go func() {
		err := srv.Serve(pln)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		if err != nil {
			err = fmt.Errorf("goproxybase: serve: %w", err)
		}
		done <- err
	}()
	return srv, done
}

// leafCache is a bounded CertStore: goproxy without one mints a leaf on
// every CONNECT, which would make the warm phase measure cold mints.
type leafCache struct {
	mu     sync.Mutex
	leaves map[string]*tls.Certificate
}

func (c *leafCache) Fetch(host string, gen func() (*tls.Certificate, error)) (*tls.Certificate, error) {
	c.mu.Lock()
	leaf, ok := c.leaves[host]
	c.mu.Unlock()
	if ok {
		return leaf, nil
	}
	leaf, err := gen()
	if err != nil {
		return nil, fmt.Errorf("mint leaf for %s: %w", host, err)
	}
	c.mu.Lock()
	if len(c.leaves) >= maxCachedLeaves {
		clear(c.leaves) // crude, but bounded; the bench never gets here
	}
	c.leaves[host] = leaf
	c.mu.Unlock()
	return leaf, nil
}
