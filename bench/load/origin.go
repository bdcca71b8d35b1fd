package load

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"
)

// MaxStreamBytes bounds /stream so a hostile or mistyped request cannot
// keep the origin busy forever.
const MaxStreamBytes = 1 << 34

// maxEchoBytes bounds what /echo reads into memory.
const maxEchoBytes = 16 << 20

// Origin serves HTTP and HTTPS on the same loopback port: it looks at the
// first byte of each connection (0x16 starts a TLS handshake). One port lets
// a plain TCP relay forward to a single fixed address for every mode.
type Origin struct {
	// Addr is the listening address, host:port.
	Addr string
	// Roots trusts the origin's certificate.
	Roots *x509.CertPool
	// ColdHosts is how many cold-cache addresses (127.0.0.2 upwards, same
	// port) also serve, for the mitm mode.
	ColdHosts int

	listeners []net.Listener
	plain     *chanListener
	tlsLn     *chanListener
	servers   []*http.Server
	wg        sync.WaitGroup
}

// Endpoints served by the origin.
const (
	PathSmall  = "/small"  // SmallSize bytes of the stream
	PathStream = "/stream" // ?bytes=N bytes of the stream
	PathEcho   = "/echo"   // the request body, back
)

// StartOrigin listens on addr, and on the same port of coldHosts further
// loopback addresses for the mitm mode, and serves until Close. cert must be
// valid for every listening IP (OriginCertificate's is).
func StartOrigin(addr string, coldHosts int, cert tls.Certificate) (*Origin, error) {
	mux := http.NewServeMux()
	mux.HandleFunc(PathSmall, serveSmall)
	mux.HandleFunc(PathStream, serveStream)
	mux.HandleFunc(PathEcho, serveEcho)
	return startOrigin(addr, coldHosts, cert, mux)
}

// startOrigin serves h; tests pass a broken handler to prove that a bad
// response is counted as an error.
func startOrigin(addr string, coldHosts int, cert tls.Certificate, h http.Handler) (*Origin, error) {
	if coldHosts < 0 || coldHosts > MaxColdHosts {
		return nil, fmt.Errorf("origin: %d cold hosts: want 0 to %d", coldHosts, MaxColdHosts)
	}
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		return nil, fmt.Errorf("origin: parse certificate: %w", err)
	}
	o := &Origin{Roots: x509.NewCertPool(), ColdHosts: coldHosts}
	o.Roots.AddCert(leaf)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("origin: listen %s: %w", addr, err)
	}
	o.listeners = append(o.listeners, ln)
	o.Addr = ln.Addr().String()
	_, port, _ := net.SplitHostPort(o.Addr) // from a live listener: well formed
	for i := range coldHosts {
		a := net.JoinHostPort(coldHostIP(i).String(), port)
		ln, err := net.Listen("tcp", a)
		if err != nil {
			o.closeListeners()
			return nil, fmt.Errorf("origin: listen %s: %w", a, err)
		}
		o.listeners = append(o.listeners, ln)
	}
	o.plain = newChanListener(o.listeners[0].Addr())
	o.tlsLn = newChanListener(o.listeners[0].Addr())

	h1Cfg := &tls.Config{
		Certificates: []tls.Certificate{cert},
		// HTTP/1.1 for every client that does not offer h2: proxies forward
		// HTTP/1.1 and the bench compares like with like.
		NextProtos: []string{"http/1.1"},
		MinVersion: tls.VersionTLS12,
	}
	h2Cfg := h1Cfg.Clone()
	h2Cfg.NextProtos = []string{"h2", "http/1.1"}
	tlsCfg := &tls.Config{
		// h2 only to a client that offers it (the mitm-h2 mode, through an
		// inspecting proxy that offers what its client did), so no other
		// mode changes protocol.
		GetConfigForClient: func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
			if slices.Contains(hello.SupportedProtos, "h2") {
				return h2Cfg, nil
			}
			return h1Cfg, nil
		},
	}
	for _, ln := range []net.Listener{o.plain, tls.NewListener(o.tlsLn, tlsCfg)} {
		srv := &http.Server{
			Handler:           h,
			ReadHeaderTimeout: 10 * time.Second,
			IdleTimeout:       5 * time.Minute, // idle mode holds tunnels open
			// Handshakes cut off by the end of a run are expected; the
			// client counts every failure that matters.
			ErrorLog: log.New(io.Discard, "", 0),
		}
		o.servers = append(o.servers, srv)
		o.wg.Add(1)
		go func() {
			defer o.wg.Done()
			_ = srv.Serve(ln) // returns when Close shuts the server
		}()
	}
	for _, ln := range o.listeners {
		o.wg.Add(1)
		go func() {
			defer o.wg.Done()
			o.acceptLoop(ln)
		}()
	}
	return o, nil
}

// Close stops every listener and server and waits for their goroutines.
func (o *Origin) Close() error {
	o.closeListeners()
	for _, s := range o.servers {
		_ = s.Close()
	}
	o.wg.Wait()
	return nil
}

func (o *Origin) closeListeners() {
	for _, ln := range o.listeners {
		_ = ln.Close()
	}
}

func (o *Origin) acceptLoop(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of descriptors under idle load: back off instead of spinning.
			time.Sleep(10 * time.Millisecond)
			continue
		}
		go o.route(c)
	}
}

// route sniffs the first byte on its own goroutine so that a silent client
// cannot stall the accept loop.
func (o *Origin) route(c net.Conn) {
	_ = c.SetReadDeadline(time.Now().Add(time.Minute))
	br := bufio.NewReaderSize(c, 4096)
	first, err := br.Peek(1)
	if err != nil {
		_ = c.Close()
		return
	}
	_ = c.SetReadDeadline(time.Time{})
	pc := &peekedConn{Conn: c, r: br}
	target := o.plain
	if first[0] == 0x16 { // TLS record type "handshake"
		target = o.tlsLn
	}
	if !target.deliver(pc) {
		_ = c.Close()
	}
}

func serveSmall(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Length", strconv.Itoa(SmallSize))
	w.Header().Set("Content-Type", "application/octet-stream")
	_, _ = w.Write(payloadBlock[:SmallSize])
}

func serveStream(w http.ResponseWriter, r *http.Request) {
	n, err := strconv.ParseInt(r.URL.Query().Get("bytes"), 10, 64)
	if err != nil || n < 0 || n > MaxStreamBytes {
		http.Error(w, "bytes must be an integer in [0, 2^34]", http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Length", strconv.FormatInt(n, 10))
	w.Header().Set("Content-Type", "application/octet-stream")
	_, _ = writePayload(w, n)
}

func serveEcho(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxEchoBytes))
	if err != nil {
		http.Error(w, "read body: "+err.Error(), http.StatusRequestEntityTooLarge)
		return
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	_, _ = w.Write(body)
}

// peekedConn replays the sniffed byte before the rest of the connection.
type peekedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *peekedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// chanListener hands sniffed connections to an http.Server.
type chanListener struct {
	addr   net.Addr
	conns  chan net.Conn
	done   chan struct{}
	closer sync.Once
}

func newChanListener(addr net.Addr) *chanListener {
	return &chanListener{addr: addr, conns: make(chan net.Conn), done: make(chan struct{})}
}

func (l *chanListener) deliver(c net.Conn) bool {
	select {
	case l.conns <- c:
		return true
	case <-l.done:
		return false
	}
}

func (l *chanListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *chanListener) Close() error {
	l.closer.Do(func() { close(l.done) })
	return nil
}

func (l *chanListener) Addr() net.Addr { return l.addr }
