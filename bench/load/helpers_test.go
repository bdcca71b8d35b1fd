package load

import (
	"context"
	"errors"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/egressd/egressd/bench/goproxybase"
	"github.com/egressd/egressd/bench/relay"
)

// testOrigin starts the real origin with a fresh certificate.
func testOrigin(t *testing.T, cold int) *Origin {
	t.Helper()
	cert, err := OriginCertificate()
	if err != nil {
		t.Fatal(err)
	}
	o, err := StartOrigin("127.0.0.1:0", cold, cert)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = o.Close() })
	return o
}

// startRelay runs a relay to origin on loopback.
func startRelay(t *testing.T, origin string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := relay.New(origin)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = r.Serve(ln)
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		<-done
		_ = r.Close()
	})
	return ln.Addr().String()
}

// startGoproxy runs the goproxy reference on loopback.
func startGoproxy(t *testing.T, opts goproxybase.Options) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv, done := goproxybase.Serve(ln, goproxybase.New(opts))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		_ = srv.Close() // hijacked tunnels are invisible to Shutdown
		if err := <-done; err != nil && !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("goproxy: %v", err)
		}
	})
	return ln.Addr().String()
}
