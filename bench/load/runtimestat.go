package load

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// runtimeSample is what a Go proxy's Prometheus Go collector says about its
// memory: the RSS alone cannot tell goroutine stacks from heap.
type runtimeSample struct {
	goroutines, stackBytes, heapBytes float64
}

// runtimeMetrics are the Go collector's names for the sample's fields.
var runtimeMetrics = map[string]func(*runtimeSample) *float64{
	"go_goroutines":                 func(s *runtimeSample) *float64 { return &s.goroutines },
	"go_memstats_stack_inuse_bytes": func(s *runtimeSample) *float64 { return &s.stackBytes },
	"go_memstats_heap_inuse_bytes":  func(s *runtimeSample) *float64 { return &s.heapBytes },
}

// sampleRuntime reads ProxyMetrics; a zero sample and no error without it.
func (r *runner) sampleRuntime(ctx context.Context) (runtimeSample, error) {
	if r.cfg.ProxyMetrics == "" {
		return runtimeSample{}, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.cfg.ProxyMetrics, nil)
	if err != nil {
		return runtimeSample{}, err
	}
	// Straight to the loopback endpoint, never through a proxy from the environment.
	resp, err := (&http.Client{Transport: &http.Transport{Proxy: nil}}).Do(req)
	if err != nil {
		return runtimeSample{}, fmt.Errorf("read proxy metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return runtimeSample{}, fmt.Errorf("read proxy metrics: status %d", resp.StatusCode)
	}
	return parseRuntimeMetrics(resp.Body)
}

// parseRuntimeMetrics picks the three unlabelled gauges out of the
// Prometheus text format; each must be there.
func parseRuntimeMetrics(r io.Reader) (runtimeSample, error) {
	var s runtimeSample
	seen := map[string]bool{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), " ")
		field := runtimeMetrics[name]
		if !ok || field == nil {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
		if err != nil {
			return runtimeSample{}, fmt.Errorf("proxy metric %s: %w", name, err)
		}
		*field(&s) = v
		seen[name] = true
	}
	if err := sc.Err(); err != nil {
		return runtimeSample{}, fmt.Errorf("read proxy metrics: %w", err)
	}
	for name := range runtimeMetrics {
		if !seen[name] {
			return runtimeSample{}, fmt.Errorf("proxy metrics lack %s", name)
		}
	}
	return s, nil
}
