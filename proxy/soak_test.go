package proxy_test

// The data-integrity soak: concurrent tunnels, uploads and downloads of
// random data with a sha256 at both ends, while the policy is swapped every
// 200ms and one upstream resets every connection; then a drain in the middle
// of the traffic. EGRESSD_SOAK sets the duration (default 5s, what
// `make test` runs); `make soak` runs it for 10 minutes.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/egressd/egressd/acl"
)

// soakDuration is EGRESSD_SOAK, or 5s.
func soakDuration(t *testing.T) time.Duration {
	t.Helper()
	v := os.Getenv("EGRESSD_SOAK")
	if v == "" {
		return 5 * time.Second
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		t.Fatalf("EGRESSD_SOAK=%q: want a positive Go duration such as 10m", v)
	}
	return d
}

// soakOrigin serves the HTTP side of the soak: POST /upload answers
// the sha256 and length of what it received; GET /download?n=&seed=
// sends n pseudo-random bytes and their sha256 in X-Sha256, chunked
// when chunked=1.
func soakOrigin(t *testing.T) string {
	return startHTTPOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/upload":
			h := sha256.New()
			n, err := io.Copy(h, r.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			fmt.Fprintf(w, "%d %x", n, h.Sum(nil))
		case "/download":
			n, _ := strconv.Atoi(r.URL.Query().Get("n"))
			seed, _ := strconv.ParseUint(r.URL.Query().Get("seed"), 10, 64)
			body := randomPayload(seed, n)
			s := sha256.Sum256(body)
			w.Header().Set("X-Sha256", hex.EncodeToString(s[:]))
			if r.URL.Query().Get("chunked") == "1" {
				// Several flushes without a length: chunked on the wire.
				for len(body) > 0 {
					k := min(len(body), 16<<10)
					w.Write(body[:k])
					w.(http.Flusher).Flush()
					body = body[k:]
				}
				return
			}
			w.Header().Set("Content-Length", strconv.Itoa(len(body)))
			w.Write(body)
		default:
			http.NotFound(w, r)
		}
	}))
}

func randomPayload(seed uint64, n int) []byte {
	var key [32]byte
	for i := range 8 {
		key[i] = byte(seed >> (8 * i))
	}
	b := make([]byte, n)
	rand.NewChaCha8(key).Read(b)
	return b
}

// resettingOrigin accepts connections and resets them at once: the failing
// upstream of the soak.
func resettingOrigin(t *testing.T) string {
	return startTCPServer(t, func(c *net.TCPConn) { c.SetLinger(0) })
}

// transferRun is one soak operation. start runs while the drain gate is
// held: it returns once the proxy has answered the request (200 to a
// CONNECT, 100 Continue to an upload, the response head of a download),
// which proves the proxy accepted it before any drain began. finish moves
// the data and checks it.
type transferRun struct {
	kind   string
	finish func() (bytes int64, err error)
	close  func()
}

type soakStats struct {
	mu       sync.Mutex
	ok       map[string]int
	bytes    int64
	answered int // failures answered with a proper status (the resetting upstream)
	failures []string
}

func (s *soakStats) fail(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.failures) < 20 {
		s.failures = append(s.failures, fmt.Sprintf(format, args...))
	}
}

// TestSoak runs the soak and then drains during it.
func TestSoak(t *testing.T) {
	dur := soakDuration(t)
	const workers = 8
	echo := startEcho(t)
	origin := soakOrigin(t)
	resetter := resettingOrigin(t)
	p := startProxy(t)
	base := resourceSnapshot(t)

	stats := &soakStats{ok: map[string]int{}}
	var (
		gate     sync.RWMutex // held for reading while a transfer starts
		stopping bool
		inFlight atomic.Int32
		wg       sync.WaitGroup
	)
	ops := []func(rng *rand.Rand) (*transferRun, error){
		func(rng *rand.Rand) (*transferRun, error) {
			return startTunnel(p.addr, echo, 1+rng.IntN(512<<10), 0, rng)
		},
		// A paced tunnel lasts a few hundred ms, so a drain always finds
		// some in the middle of their data.
		func(rng *rand.Rand) (*transferRun, error) {
			return startTunnel(p.addr, echo, 1+rng.IntN(512<<10), 10*time.Millisecond, rng)
		},
		func(rng *rand.Rand) (*transferRun, error) {
			return startUpload(p.addr, origin, 1+rng.IntN(512<<10), rng)
		},
		func(rng *rand.Rand) (*transferRun, error) {
			return startDownload(p.addr, origin, rng.IntN(512<<10), rng.Uint64(), rng.IntN(2) == 0)
		},
		func(*rand.Rand) (*transferRun, error) { return startFailing(p.addr, resetter) },
	}
	for w := range workers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), uint64(time.Now().UnixNano())))
			for i := 0; ; i++ {
				gate.RLock()
				if stopping {
					gate.RUnlock()
					return
				}
				tr, err := ops[(w+i)%len(ops)](rng)
				if err == nil {
					inFlight.Add(1)
				}
				gate.RUnlock()
				if err != nil {
					stats.fail("start: %v", err)
					continue
				}
				n, err := tr.finish()
				tr.close()
				inFlight.Add(-1)
				stats.mu.Lock()
				switch {
				case errors.Is(err, errRelAnswered):
					stats.answered++
				case err != nil:
					stats.mu.Unlock()
					stats.fail("%s: %v", tr.kind, err)
					continue
				default:
					stats.ok[tr.kind]++
					stats.bytes += n
				}
				stats.mu.Unlock()
			}
		})
	}

	// Reload the same config every 200ms: each swap is a fresh policy
	// object, as a ConfigMap update produces.
	stopReload := make(chan struct{})
	var reloads atomic.Int32
	var reloadWG sync.WaitGroup
	reloadWG.Go(func() {
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stopReload:
				return
			case <-tick.C:
			}
			pol, err := acl.Compile(testACL())
			if err != nil {
				t.Errorf("compile: %v", err)
				return
			}
			p.srv.SetPolicy(pol)
			reloads.Add(1)
		}
	})

	time.Sleep(dur)

	// SIGTERM: no transfer starts after this point; every one that the
	// proxy already answered must finish within the drain deadline.
	gate.Lock()
	stopping = true
	gate.Unlock()
	drainingWith := inFlight.Load()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	start := time.Now()
	err := p.srv.Shutdown(ctx)
	drainTook := time.Since(start)
	wg.Wait()
	close(stopReload)
	reloadWG.Wait()
	if err != nil {
		t.Errorf("Shutdown with %d transfers in flight: %v, want nil within 30s", drainingWith, err)
	}

	stats.mu.Lock()
	defer stats.mu.Unlock()
	total := 0
	for _, n := range stats.ok {
		total += n
	}
	t.Logf("soak %s: %d transfers ok %v, %d MiB moved and verified, %d resets answered 502, %d failures, %d policy reloads; drain with %d in flight took %s",
		dur, total, stats.ok, stats.bytes>>20, stats.answered, len(stats.failures), reloads.Load(), drainingWith, drainTook.Round(time.Millisecond))
	for _, f := range stats.failures {
		t.Errorf("failed transfer: %s", f)
	}
	if n := panicCount(p); n != 0 {
		t.Errorf("the proxy logged %d panics during the soak", n)
	}
	if total == 0 || stats.answered == 0 {
		t.Errorf("soak moved %d transfers and %d answered failures, want both above zero", total, stats.answered)
	}
	base.check(t)
}

// errRelAnswered marks the expected failure: the resetting upstream,
// answered with 502 and a reason.
var errRelAnswered = errors.New("answered with a proxy error status")

func dialProxy(addr string) (*net.TCPConn, *bufio.Reader, error) {
	c, err := net.DialTimeout("tcp", addr, ioTimeout)
	if err != nil {
		return nil, nil, err
	}
	c.SetDeadline(time.Now().Add(3 * ioTimeout))
	return c.(*net.TCPConn), bufio.NewReader(c), nil
}

// startTunnel echoes size random bytes through a tunnel; with pace set
// it writes them in 16 KiB pieces with a pause between.
func startTunnel(proxyAddr, echo string, size int, pace time.Duration, rng *rand.Rand) (*transferRun, error) {
	c, br, err := dialProxy(proxyAddr)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", echo, echo)
	resp, err := http.ReadResponse(br, &http.Request{Method: "CONNECT"})
	if err != nil || resp.StatusCode != 200 {
		c.Close()
		return nil, fmt.Errorf("CONNECT: %v %v", statusOf(resp), err)
	}
	payload := make([]byte, size)
	for i := range payload {
		payload[i] = byte(rng.Uint32())
	}
	kind := "tunnel"
	if pace > 0 {
		kind = "paced tunnel"
	}
	return &transferRun{kind: kind, close: func() { c.Close() }, finish: func() (int64, error) {
		werr := make(chan error, 1)
		go func() {
			var err error
			for rest := payload; len(rest) > 0 && err == nil; {
				k := len(rest)
				if pace > 0 {
					k = min(k, 16<<10)
					time.Sleep(pace)
				}
				_, err = c.Write(rest[:k])
				rest = rest[k:]
			}
			if err == nil {
				err = c.CloseWrite()
			}
			werr <- err
		}()
		h := sha256.New()
		n, err := io.Copy(h, br)
		if e := <-werr; e != nil && err == nil {
			err = e
		}
		want := sha256.Sum256(payload)
		if err != nil || n != int64(size) || !bytes.Equal(h.Sum(nil), want[:]) {
			return 0, fmt.Errorf("echo of %d bytes: got %d bytes, intact=%v, err=%v", size, n, bytes.Equal(h.Sum(nil), want[:]), err)
		}
		return 2 * n, nil
	}}, nil
}

func startUpload(proxyAddr, origin string, size int, rng *rand.Rand) (*transferRun, error) {
	c, br, err := dialProxy(proxyAddr)
	if err != nil {
		return nil, err
	}
	host := origin[len("http://"):]
	fmt.Fprintf(c, "POST %s/upload HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n", origin, host, size)
	resp, err := http.ReadResponse(br, &http.Request{Method: "POST"})
	if err != nil || resp.StatusCode != 100 {
		c.Close()
		return nil, fmt.Errorf("upload: want 100 Continue, got %v %v", statusOf(resp), err)
	}
	payload := make([]byte, size)
	for i := range payload {
		payload[i] = byte(rng.Uint32())
	}
	return &transferRun{kind: "upload", close: func() { c.Close() }, finish: func() (int64, error) {
		if _, err := c.Write(payload); err != nil {
			return 0, fmt.Errorf("write body: %w", err)
		}
		resp, err := http.ReadResponse(br, &http.Request{Method: "POST"})
		if err != nil {
			return 0, fmt.Errorf("read response: %w", err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		s := sha256.Sum256(payload)
		want := fmt.Sprintf("%d %x", size, s)
		if err != nil || resp.StatusCode != 200 || string(body) != want {
			return 0, fmt.Errorf("upload of %d bytes: %d %q %v, origin should have answered %q", size, resp.StatusCode, body, err, want)
		}
		return int64(size), nil
	}}, nil
}

func startDownload(proxyAddr, origin string, size int, seed uint64, chunked bool) (*transferRun, error) {
	c, br, err := dialProxy(proxyAddr)
	if err != nil {
		return nil, err
	}
	ch := "0"
	if chunked {
		ch = "1"
	}
	host := origin[len("http://"):]
	fmt.Fprintf(c, "GET %s/download?n=%d&seed=%d&chunked=%s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", origin, size, seed, ch, host)
	resp, err := http.ReadResponse(br, &http.Request{Method: "GET"})
	if err != nil || resp.StatusCode != 200 {
		c.Close()
		return nil, fmt.Errorf("download: %v %v", statusOf(resp), err)
	}
	return &transferRun{kind: "download", close: func() { c.Close() }, finish: func() (int64, error) {
		defer resp.Body.Close()
		h := sha256.New()
		n, err := io.Copy(h, resp.Body)
		got := hex.EncodeToString(h.Sum(nil))
		if err != nil || n != int64(size) || got != resp.Header.Get("X-Sha256") {
			return 0, fmt.Errorf("download of %d bytes (chunked=%v): got %d, sha256 match=%v, err=%v", size, chunked, n, got == resp.Header.Get("X-Sha256"), err)
		}
		return n, nil
	}}, nil
}

// startFailing asks for the resetting upstream; the only right answer
// is a 502 naming the reason.
func startFailing(proxyAddr, resetter string) (*transferRun, error) {
	c, br, err := dialProxy(proxyAddr)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(c, "GET http://%s/ HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", resetter, resetter)
	resp, err := http.ReadResponse(br, &http.Request{Method: "GET"})
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("resetting upstream: %w", err)
	}
	return &transferRun{kind: "failing", close: func() { c.Close() }, finish: func() (int64, error) {
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadGateway || resp.Header.Get("X-Proxy-Error") == "" {
			return 0, fmt.Errorf("resetting upstream answered %d X-Proxy-Error=%q, want 502 with a reason", resp.StatusCode, resp.Header.Get("X-Proxy-Error"))
		}
		return 0, errRelAnswered
	}}, nil
}

func statusOf(r *http.Response) string {
	if r == nil {
		return "no response"
	}
	return r.Status
}
