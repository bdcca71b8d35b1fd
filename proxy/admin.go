package proxy

import (
	"net/http"
	"net/http/pprof"
)

// AdminHandler serves the admin port: kubelet probes and Prometheus come
// here directly, without a PROXY header, so this port never expects one.
// /readyz turns 503 as soon as a drain starts; /healthz stays 200 until
// the process exits, so the kubelet never kills a pod that is draining.
func AdminHandler(ready func() bool, metrics http.Handler, enablePprof bool) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !ready() {
			http.Error(w, "draining", http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ready\n"))
	})
	if metrics != nil {
		mux.Handle("GET /metrics", metrics)
	}
	if enablePprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	return mux
}
