package proxy

import (
	"fmt"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"golang.org/x/time/rate"
)

// logSampler bounds a warning that a hostile or misconfigured peer can
// trigger once per connection: a changed NAT subnet refuses every tenant's
// connection, and the first few lines say so while the rest only count.
// Each line carries how many were suppressed since the last one, so
// nothing is lost from the totals (the metric has them all anyway).
type logSampler struct {
	lim        *rate.Limiter
	suppressed atomic.Int64
}

// Proxy-header refusals: a burst of 20 lines, then one per second.
func newHeaderLogSampler() *logSampler {
	return &logSampler{lim: rate.NewLimiter(rate.Every(time.Second), 20)}
}

// allow reports whether a line may be written now, and how many lines
// were suppressed before it.
func (l *logSampler) allow() (bool, int64) { return l.allowAt(time.Now()) }

func (l *logSampler) allowAt(now time.Time) (bool, int64) {
	if !l.lim.AllowN(now, 1) {
		l.suppressed.Add(1)
		return false, 0
	}
	return true, l.suppressed.Swap(0)
}

// warnHeaderRefused logs a connection closed at the PROXY header, at warn
// level: when the PLS NAT range or trusted_proxies is wrong, this line is
// the only sign that every tenant is being turned away.
func (s *Server) warnHeaderRefused(outcome fmt.Stringer, peer fmt.Stringer) {
	ok, suppressed := s.headerLog.allow()
	if !ok {
		return
	}
	fields := []zap.Field{zap.Stringer("outcome", outcome), zap.Stringer(fieldPeer, peer)}
	if suppressed > 0 {
		fields = append(fields, zap.Int64("suppressed", suppressed))
	}
	s.log.Warn("connection refused at PROXY header", fields...)
}
