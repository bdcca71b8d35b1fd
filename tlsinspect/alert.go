package tlsinspect

import (
	"errors"
	"net"
	"reflect"
)

// TLS alert descriptions (RFC 8446 §6.2) a client sends when it will not
// accept the certificate it was shown.
const (
	alertBadCertificate     = 42
	alertCertificateUnknown = 46
	alertUnknownCA          = 48
)

// RejectedCertificate reports whether err, from a server-side handshake,
// is the client's alert saying it does not accept the certificate:
// bad_certificate (Go), certificate_unknown (Java and Android trust
// managers, most pinning libraries) or unknown_ca (OpenSSL, curl). These
// are what a pinned client, or one that lacks the corporate CA, sends on
// seeing a minted leaf; timeouts, resets and protocol errors are not.
//
// crypto/tls reports a received alert as a *net.OpError with Op "remote
// error" around its unexported alert type, a uint8: the value is read by
// kind, since neither the type nor tls.AlertError is what the server side
// returns.
func RejectedCertificate(err error) bool {
	var op *net.OpError
	if !errors.As(err, &op) || op.Op != "remote error" || op.Err == nil {
		return false
	}
	v := reflect.ValueOf(op.Err)
	if v.Kind() != reflect.Uint8 || v.Type().PkgPath() != "crypto/tls" {
		return false
	}
	switch v.Uint() {
	case alertBadCertificate, alertCertificateUnknown, alertUnknownCA:
		return true
	}
	return false
}
