// Package tlsinspect holds everything in egressd that touches the
// inspection CA key or terminates TLS: loading and checking the corporate
// CA, minting short-lived leaf certificates per host (cached, LRU-bounded,
// one mint per host under concurrency), the client-leg server config, the
// verified upstream client config, and a non-consuming ClientHello peek so
// a spliced tunnel forwards the client's original bytes untouched.
//
// Which tunnels are bumped is policy and lives in the acl package; how a
// bumped connection is served lives in proxy. Nothing outside this package
// ever sees the CA private key.
//
// The package deliberately uses crypto/tls and crypto/x509 rather than
// goproxy's MITM support: goproxy ships a built-in CA, draws leaf serials
// from math/rand and skips upstream verification by default (see
// docs/tls-inspection.md).
package tlsinspect
