package proxy

import (
	"bufio"
	"errors"
	"net/http"
	"strconv"
)

var (
	errUpstreamTimeout  = errors.New("proxy: upstream response timeout")
	errUpstreamProtocol = errors.New("proxy: upstream protocol error")
)

// statusFor maps an error on the request path to the status the client
// gets and the short reason that goes into the log, the metrics and the
// X-Proxy-Error header. Keep this the only such mapping.
func statusFor(err error) (int, string) {
	var de *DialError
	switch {
	case errors.Is(err, errHeadTooLarge):
		return http.StatusRequestHeaderFieldsTooLarge, "header_too_large"
	case errors.Is(err, errSmuggling):
		return http.StatusBadRequest, "ambiguous_framing"
	case errors.Is(err, errBadTE):
		return http.StatusNotImplemented, "unsupported_transfer_encoding"
	case errors.Is(err, errNotProxy):
		return http.StatusBadRequest, "not_a_proxy_request"
	case errors.Is(err, errBadVersion):
		return http.StatusHTTPVersionNotSupported, "http_version"
	case errors.Is(err, errBadExpect):
		return http.StatusExpectationFailed, "expectation"
	case errors.Is(err, errObsFold), errors.Is(err, errMalformed), errors.Is(err, errBadHost),
		errors.Is(err, errBadTarget), errors.Is(err, errMethodInvalid):
		return http.StatusBadRequest, "malformed_request"
	case errors.Is(err, errMisdirected):
		return http.StatusMisdirectedRequest, "misdirected"
	case errors.As(err, &de):
		switch {
		case de.Step == "ssrf":
			return http.StatusForbidden, "ssrf"
		case de.Step == "tls":
			return http.StatusBadGateway, "upstream_tls"
		case de.Step == "dns":
			return http.StatusBadGateway, "dns"
		case isTimeout(de.Err):
			return http.StatusGatewayTimeout, "dial_timeout"
		default:
			return http.StatusBadGateway, "dial"
		}
	case errors.Is(err, errUpstreamTimeout):
		return http.StatusGatewayTimeout, "upstream_timeout"
	default:
		return http.StatusBadGateway, "upstream"
	}
}

// writeStatus sends a short plain-text proxy response. The body names the
// reason and the request ID so a user can quote it to the proxy team.
func writeStatus(bw *bufio.Writer, status int, reason, detail, reqID string, close bool, extra ...string) error {
	body := "egressd: " + http.StatusText(status) + ": " + detail + " (request_id=" + reqID + ")\n"
	bw.WriteString("HTTP/1.1 ")
	bw.WriteString(strconv.Itoa(status))
	bw.WriteByte(' ')
	bw.WriteString(http.StatusText(status))
	bw.WriteString("\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ")
	bw.WriteString(strconv.Itoa(len(body)))
	bw.WriteString("\r\nX-Request-Id: ")
	bw.WriteString(reqID)
	bw.WriteString("\r\nX-Proxy-Error: ")
	bw.WriteString(reason)
	bw.WriteString("\r\n")
	for i := 0; i+1 < len(extra); i += 2 {
		bw.WriteString(extra[i])
		bw.WriteString(": ")
		bw.WriteString(extra[i+1])
		bw.WriteString("\r\n")
	}
	if close {
		bw.WriteString("Connection: close\r\n")
	}
	bw.WriteString("\r\n")
	bw.WriteString(body)
	return bw.Flush()
}
