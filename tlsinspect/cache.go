package tlsinspect

import (
	"container/list"
	"crypto/tls"
	"sync"
	"time"
)

// leafCache is a size-bounded LRU of minted leaves keyed by normalized
// host, with a per-entry expiry. Hostile clients choose hosts freely (SNI),
// so without the bound the cache would be a memory-exhaustion lever.
type leafCache struct {
	mu    sync.Mutex
	max   int
	order *list.List // front is most recently used; values are *cacheEntry
	byKey map[string]*list.Element
}

type cacheEntry struct {
	host    string
	cert    *tls.Certificate
	expires time.Time
}

func newLeafCache(max int) *leafCache {
	return &leafCache{max: max, order: list.New(), byKey: make(map[string]*list.Element)}
}

// get returns the leaf for host unless it is missing or expired at now;
// expired entries are dropped on sight.
func (c *leafCache) get(host string, now time.Time) (*tls.Certificate, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.byKey[host]
	if !ok {
		return nil, false
	}
	e := el.Value.(*cacheEntry)
	if !now.Before(e.expires) {
		c.order.Remove(el)
		delete(c.byKey, host)
		return nil, false
	}
	c.order.MoveToFront(el)
	return e.cert, true
}

// add stores a leaf, evicting the least recently used entry when full,
// and returns the resulting size for the metrics hook.
func (c *leafCache) add(host string, cert *tls.Certificate, expires time.Time) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.byKey[host]; ok {
		el.Value = &cacheEntry{host: host, cert: cert, expires: expires}
		c.order.MoveToFront(el)
		return c.order.Len()
	}
	c.byKey[host] = c.order.PushFront(&cacheEntry{host: host, cert: cert, expires: expires})
	for c.order.Len() > c.max {
		oldest := c.order.Back()
		c.order.Remove(oldest)
		delete(c.byKey, oldest.Value.(*cacheEntry).host)
	}
	return c.order.Len()
}

// cacheExpiry keeps a leaf for half of its remaining lifetime, so a client
// that caches a handshake or holds a long connection never sees it expire,
// and a leaf clamped by a soon-expiring CA is refreshed sooner.
func cacheExpiry(now, notAfter time.Time) time.Time {
	return now.Add(notAfter.Sub(now) / 2)
}
