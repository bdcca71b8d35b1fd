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
// gets and the outcome whose reason goes into the log, the metrics and the
// X-Proxy-Error header. Keep this the only such mapping; the status comes
// from the outcomes table.
func statusFor(err error) (int, outcome) {
	o := outcomeOf(err)
	return o.status(), o
}

func outcomeOf(err error) outcome {
	var de *DialError
	switch {
	case errors.Is(err, errHeadTooLarge):
		return outcomeHeaderTooLarge
	case errors.Is(err, errSmuggling):
		return outcomeAmbiguousFraming
	case errors.Is(err, errBadTE):
		return outcomeUnsupportedTE
	case errors.Is(err, errNotProxy):
		return outcomeNotProxy
	case errors.Is(err, errBadVersion):
		return outcomeHTTPVersion
	case errors.Is(err, errBadExpect):
		return outcomeExpectation
	case errors.Is(err, errObsFold), errors.Is(err, errMalformed), errors.Is(err, errBadHost),
		errors.Is(err, errBadTarget), errors.Is(err, errMethodInvalid):
		return outcomeMalformed
	case errors.Is(err, errMisdirected):
		return outcomeMisdirected
	case errors.As(err, &de):
		switch {
		case de.Step == DialStepSSRF:
			return outcomeSSRF
		case de.Step == DialStepTLS:
			return outcomeUpstreamTLS
		case de.Step == DialStepDNS:
			return outcomeDNS
		case isTimeout(de.Err):
			return outcomeDialTimeout
		default:
			return outcomeDial
		}
	case errors.Is(err, errUpstreamTimeout):
		return outcomeUpstreamTimeout
	default:
		return outcomeUpstream
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
