package load

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestCorruptResponsesAreErrors serves broken bodies through the relay and
// checks that every one is an error and that no figure is printed.
func TestCorruptResponsesAreErrors(t *testing.T) {
	good := payloadBlock[:SmallSize]
	tests := []struct {
		name    string
		handler http.HandlerFunc
		wantErr string
	}{
		{
			name: "flipped byte",
			handler: func(w http.ResponseWriter, _ *http.Request) {
				b := append([]byte(nil), good...)
				b[100] ^= 1
				_, _ = w.Write(b)
			},
			wantErr: "body checksum",
		},
		{
			name: "short body",
			handler: func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Length", strconv.Itoa(SmallSize))
				_, _ = w.Write(good[:SmallSize-10])
			},
			wantErr: "unexpected EOF",
		},
		{
			name: "wrong length",
			handler: func(w http.ResponseWriter, _ *http.Request) {
				_, _ = w.Write(good[:SmallSize-1])
			},
			wantErr: "content-length 511, want 512",
		},
		{
			name: "long chunked body",
			handler: func(w http.ResponseWriter, _ *http.Request) {
				w.(http.Flusher).Flush() // no Content-Length: chunked
				_, _ = w.Write(good)
				_, _ = w.Write(good[:1])
			},
			wantErr: "body length 513, want 512",
		},
		{
			name: "server error",
			handler: func(w http.ResponseWriter, _ *http.Request) {
				http.Error(w, "boom", http.StatusBadGateway)
			},
			wantErr: "status 502",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cert, err := OriginCertificate()
			if err != nil {
				t.Fatal(err)
			}
			origin, err := startOrigin("127.0.0.1:0", 0, cert, tc.handler)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = origin.Close() })
			addr := startRelay(t, origin.Addr)
			for _, mode := range []string{ModeHTTPRPS, ModeConnectRate} {
				cfg := Config{Mode: mode, Target: "broken", Proxy: addr, Relay: true, Concurrency: 1,
					Duration: 2 * time.Second, Requests: 5, ProxyProtocol: 2, LinkID: 1}
				rs, err := Run(context.Background(), cfg, origin)
				if err != nil {
					t.Fatal(err)
				}
				r := rs[0]
				if r.Errors != 5 || r.Ops != 0 {
					t.Errorf("%s: errors=%d ops=%d, want 5 and 0", mode, r.Errors, r.Ops)
				}
				if len(r.ErrorSamples) == 0 || !strings.Contains(r.ErrorSamples[0], tc.wantErr) {
					t.Errorf("%s: error samples %q, want one containing %q", mode, r.ErrorSamples, tc.wantErr)
				}
				if r.OpsPerS != nil || r.P50Ms != nil || r.MiBPerS != nil {
					t.Errorf("%s: a failed run printed figures", mode)
				}
				if !strings.Contains(r.Note, "figures withheld") {
					t.Errorf("%s: note %q, want it to say figures are withheld", mode, r.Note)
				}
			}
		})
	}
}
