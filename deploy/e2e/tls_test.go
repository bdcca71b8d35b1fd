package e2e

import (
	"crypto/tls"
	"net/http"
)

// insecureLoopback is for readiness polls of the servers this package
// started on 127.0.0.1 with self-signed certificates; no other address is
// ever dialled.
func insecureLoopback() http.RoundTripper {
	return &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}
}
