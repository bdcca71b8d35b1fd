package metrics

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestHandlerServesRegistry(t *testing.T) {
	reg := NewRegistry()
	m := New(reg, BuildInfo{Version: "1.2.3", GoVersion: "go1.26.8"})
	m.SetTenants([]string{"alpha"})
	m.ObserveRequest(Request{Tenant: "alpha", Method: "GET", Decision: allowRule, Status: 200})

	srv := httptest.NewServer(Handler(reg))
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	for _, want := range []string{
		`egressd_build_info{goversion="go1.26.8",version="1.2.3"} 1`,
		`egressd_requests_total{decision="allow",method="GET",status_class="2xx",tenant="alpha"} 1`,
		"go_goroutines ",             // runtime collector from NewRegistry
		"process_start_time_seconds", // process collector
		`promhttp_metric_handler_errors_total{cause="gathering"} 0`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("exposition lacks %q", want)
		}
	}
}
