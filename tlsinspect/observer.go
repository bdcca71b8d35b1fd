package tlsinspect

import "time"

// Observer receives the inspector's metrics events; cmd/egressd adapts it
// to package metrics (inspectObserver in serve.go), so tlsinspect imports
// no metrics code. Calls are made synchronously on the handshake path, so
// implementations must be cheap and safe for concurrent use.
//
// Every Certificate call reports exactly one CacheHit or CacheMiss; each
// actual mint reports one MintDuration followed by CacheSize, so
// misses minus mints is the number of callers that shared someone else's mint.
type Observer interface {
	MintDuration(time.Duration)
	CacheHit()
	CacheMiss()
	CacheSize(int)
}

type nopObserver struct{}

func (nopObserver) MintDuration(time.Duration) {}
func (nopObserver) CacheHit()                  {}
func (nopObserver) CacheMiss()                 {}
func (nopObserver) CacheSize(int)              {}
