package tlsinspect

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/egressd/egressd/internal/testpki"
)

// reportCPU adds cpu-ns/op: process CPU time per iteration, which stays
// meaningful when other jobs compete for the cores. Run with -cpu 1 so
// it is not inflated by parallel GC work.
func reportCPU(b *testing.B) func() {
	start := processCPU()
	return func() {
		if used := processCPU() - start; used > 0 && b.N > 0 {
			b.ReportMetric(float64(used.Nanoseconds())/float64(b.N), "cpu-ns/op")
		}
	}
}

// BenchmarkMint is the cost of one leaf on a cache miss (keygen + sign +
// parse) for each CA key type; the target is under 1 ms.
func BenchmarkMint(b *testing.B) {
	for _, bc := range []struct {
		name string
		key  crypto.Signer // P-256 when nil
	}{
		{name: "ca=ecdsa-p256"},
		{name: "ca=rsa-2048", key: rsaKey(b)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			ca := issue(b, testpki.Spec{CommonName: "Bench CA", Key: bc.key, IsCA: true})
			insp, err := Load(caFiles(b, b.TempDir(), ca), nil)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			defer reportCPU(b)()
			for b.Loop() {
				if _, err := insp.ca.mint("bench.example", time.Now(), DefaultLeafValidity); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	// The share of a mint that reusing one leaf key would save.
	b.Run("part=leaf-keygen", func(b *testing.B) {
		b.ReportAllocs()
		defer reportCPU(b)()
		for b.Loop() {
			if _, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkCertificateCached is a cache hit: a map lookup under a mutex,
// no signing.
func BenchmarkCertificateCached(b *testing.B) {
	insp, _, _, obs := newInspector(b, nil)
	for n := range 1000 {
		if _, err := insp.Certificate("host" + strconv.Itoa(n) + ".example"); err != nil {
			b.Fatal(err)
		}
	}
	mints := obs.mints.Load()
	b.ReportAllocs()
	defer reportCPU(b)()
	for b.Loop() {
		if _, err := insp.Certificate("host500.example"); err != nil {
			b.Fatal(err)
		}
	}
	if obs.mints.Load() != mints {
		b.Fatal("cache hit path minted")
	}
}

// BenchmarkHandshakeCached is the client leg of a bumped tunnel to a host
// already in the cache: TLSConfigFor plus a full TLS 1.3 handshake over
// net.Pipe (the client side verifies against the CA, as a workload would).
func BenchmarkHandshakeCached(b *testing.B) {
	insp, _, ca, _ := newInspector(b, nil)
	if _, err := insp.Certificate("hs.example"); err != nil {
		b.Fatal(err)
	}
	cli := &tls.Config{ServerName: "hs.example", RootCAs: testpki.Pool(ca.Cert), Time: func() time.Time { return t0 }}
	b.ReportAllocs()
	defer reportCPU(b)()
	for b.Loop() {
		c1, c2 := net.Pipe()
		errc := make(chan error, 1)
		go func() {
			cfg, err := insp.TLSConfigFor("hs.example")
			if err != nil {
				errc <- err
				return
			}
			errc <- tls.Server(c2, cfg).Handshake()
		}()
		if err := tls.Client(c1, cli).Handshake(); err != nil {
			b.Fatal(err)
		}
		if err := <-errc; err != nil {
			b.Fatal(err)
		}
		c1.Close()
		c2.Close()
	}
}

// BenchmarkPeekClientHello is the per-CONNECT cost of reading the SNI.
func BenchmarkPeekClientHello(b *testing.B) {
	hello := captureHello(b, &tls.Config{ServerName: "peek.example", NextProtos: []string{"http/1.1"}})
	b.SetBytes(int64(len(hello)))
	b.ReportAllocs()
	defer reportCPU(b)()
	for b.Loop() {
		r := newPeekReader(hello)
		if _, err := PeekClientHello(r); err != nil {
			b.Fatal(err)
		}
	}
}
