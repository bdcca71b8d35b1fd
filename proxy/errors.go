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
	case errors.Is(err, errSmuggling), errors.Is(err, errBadChunk):
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
	case errors.Is(err, errAmbiguousPath):
		return outcomeAmbiguousPath
	case errors.Is(err, errParentAuth):
		return outcomeParentAuth
	case errors.Is(err, errParentRefused):
		return outcomeParent
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
// reason and the request ID so a user can quote it to the proxy team. It
// returns the bytes written, which the Squid line counts.
func writeStatus(bw *bufio.Writer, status int, reason, detail, reqID string, close bool, extra ...string) int {
	body := "egressd: " + http.StatusText(status) + ": " + detail + " (request_id=" + reqID + ")\n"
	w := headWriter{bw: bw}
	w.str("HTTP/1.1 ")
	w.str(strconv.Itoa(status))
	w.str(" ")
	w.str(http.StatusText(status))
	w.str("\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ")
	w.str(strconv.Itoa(len(body)))
	w.str("\r\n")
	w.n += writeRequestID(bw, reqID)
	w.str("X-Proxy-Error: ")
	w.str(reason)
	w.str("\r\n")
	for i := 0; i+1 < len(extra); i += 2 {
		w.str(extra[i])
		w.str(": ")
		w.str(extra[i+1])
		w.str("\r\n")
	}
	if close {
		w.str("Connection: close\r\n")
	}
	w.str("\r\n")
	w.str(body)
	bw.Flush()
	return w.n
}

// writeRequestID adds the header that ties a response to its access-log
// line. Every response egressd sends or relays carries it, the 200 of a
// CONNECT included. An origin's own X-Request-Id is relayed too; egressd's
// comes after it, so it is the last value of the field.
func writeRequestID(bw *bufio.Writer, reqID string) int {
	bw.WriteString("X-Request-Id: ")
	bw.WriteString(reqID)
	bw.WriteString("\r\n")
	return len("X-Request-Id: \r\n") + len(reqID)
}
