package tlsinspect

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"time"

	"golang.org/x/sync/singleflight"
)

// ErrNotEnabled is returned by Load when the config has no ca_cert.
var ErrNotEnabled = errors.New("tlsinspect: tls_inspection.ca_cert is not set")

// ALPN protocol IDs (RFC 7301, RFC 9113 §3.2) the bumped legs speak.
const (
	ALPNHTTP1 = "http/1.1"
	ALPNH2    = "h2"
)

// alpnHTTP1 is the default of both legs: a leg given no protocols speaks
// HTTP/1.1, and a client that offers only h2 then fails the handshake with
// no_application_protocol rather than being answered in a protocol it did
// not ask for.
var alpnHTTP1 = []string{ALPNHTTP1}

// UpstreamALPN is what to offer the real server for a client that offered
// clientALPN: h2 only when the client can speak it too, so that the client
// leg can be offered exactly what the upstream chose.
func UpstreamALPN(clientALPN []string) []string {
	for _, p := range clientALPN {
		if p == ALPNH2 {
			return []string{ALPNH2, ALPNHTTP1}
		}
	}
	return alpnHTTP1
}

// ClientALPN is the single protocol to offer the client once the upstream
// negotiated upstream: h2 only when the upstream speaks h2, so every h2
// stream has an h2 stream behind it; HTTP/1.1 otherwise (including an
// upstream without ALPN).
func ClientALPN(upstream string) string {
	if upstream == ALPNH2 {
		return ALPNH2
	}
	return ALPNHTTP1
}

func protosOr(alpn []string) []string {
	if len(alpn) == 0 {
		return alpnHTTP1
	}
	return alpn
}

// upstreamSessionCacheSize bounds TLS session resumption state kept for
// upstream servers; resumption saves a full handshake per bumped request
// burst to the same origin.
const upstreamSessionCacheSize = 1024

// Inspector mints leaves for bumped tunnels and builds both TLS legs. It is
// safe for concurrent use. A config reload builds a new Inspector with Load
// and swaps it in; the old one's cache is simply dropped.
type Inspector struct {
	ca       *authority
	validity time.Duration
	nonTLS   NonTLSMode
	insecure map[string]struct{}
	roots    *x509.CertPool
	sessions tls.ClientSessionCache
	obs      Observer
	cache    *leafCache
	flight   singleflight.Group
	// now is the clock for minting and cache expiry; tests move it.
	now func() time.Time
}

// Load reads the CA, key, chain and extra roots named by cfg, checks them
// and returns a ready Inspector. obs may be nil.
func Load(cfg Config, obs Observer) (*Inspector, error) {
	return load(cfg, obs, time.Now)
}

func load(cfg Config, obs Observer, now func() time.Time) (*Inspector, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if !cfg.Enabled() {
		return nil, ErrNotEnabled
	}
	if obs == nil {
		obs = nopObserver{}
	}
	ca, err := loadAuthority(&cfg, now())
	if err != nil {
		return nil, err
	}
	// Mint once now, so a key crypto/x509 cannot sign with fails at startup
	// rather than on the first tenant's handshake. Only the signature is
	// checked: full verification would trip over CA name constraints.
	probe, err := ca.mint("egressd-self-test.invalid", now(), time.Hour)
	if err != nil {
		return nil, fmt.Errorf("%s.ca_key: self-test: %w", yamlSection, err)
	}
	if err := probe.Leaf.CheckSignatureFrom(ca.cert); err != nil {
		return nil, fmt.Errorf("%s.ca_key: self-test: minted leaf does not verify: %w", yamlSection, err)
	}
	roots, err := upstreamRoots(cfg.UpstreamRoots)
	if err != nil {
		return nil, err
	}
	nonTLS, _ := parseNonTLS(cfg.NonTLS) // Validate accepted it.
	insecure := make(map[string]struct{}, len(cfg.InsecureUpstream))
	for _, h := range cfg.InsecureUpstream {
		n, _ := normalizeHost(h) // Validate accepted it.
		insecure[n] = struct{}{}
	}
	return &Inspector{
		ca:       ca,
		validity: cfg.leafValidity(),
		nonTLS:   nonTLS,
		insecure: insecure,
		roots:    roots,
		sessions: tls.NewLRUClientSessionCache(upstreamSessionCacheSize),
		obs:      obs,
		cache:    newLeafCache(cfg.cacheSize()),
		now:      now,
	}, nil
}

// upstreamRoots is the system pool plus the configured extra roots. A
// machine without system roots (a scratch image) still works with extras.
func upstreamRoots(paths []string) (*x509.CertPool, error) {
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	for n, p := range paths {
		certs, err := readCerts(p)
		if err != nil {
			return nil, fmt.Errorf("%s.upstream_roots[%d]: %w", yamlSection, n, err)
		}
		for _, c := range certs {
			pool.AddCert(c)
		}
	}
	return pool, nil
}

// Certificate returns the leaf for host, minting it on a cache miss.
// Concurrent callers for one host share a single mint.
func (i *Inspector) Certificate(host string) (*tls.Certificate, error) {
	h, err := normalizeHost(host)
	if err != nil {
		return nil, err
	}
	if c, ok := i.cache.get(h, i.now()); ok {
		i.obs.CacheHit()
		return c, nil
	}
	i.obs.CacheMiss()
	v, err, _ := i.flight.Do(h, func() (any, error) {
		// A flight that finished between our miss and this call has
		// already filled the cache; minting again would break "once".
		now := i.now()
		if c, ok := i.cache.get(h, now); ok {
			return c, nil
		}
		start := time.Now()
		c, err := i.ca.mint(h, now, i.validity)
		if err != nil {
			return nil, err
		}
		i.obs.MintDuration(time.Since(start))
		i.obs.CacheSize(i.cache.add(h, c, cacheExpiry(now, c.Leaf.NotAfter)))
		return c, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(*tls.Certificate), nil
}

// TLSConfigFor is the server config for the client leg of a bumped tunnel
// to host: the minted leaf plus chain, TLS 1.2 or later, offering alpn
// (HTTP/1.1 when none is given; see ClientALPN). Session tickets are off
// because each connection gets its own config, so a ticket could never be
// redeemed.
func (i *Inspector) TLSConfigFor(host string, alpn ...string) (*tls.Config, error) {
	c, err := i.Certificate(host)
	if err != nil {
		return nil, err
	}
	return &tls.Config{
		Certificates:           []tls.Certificate{*c},
		MinVersion:             tls.VersionTLS12,
		NextProtos:             protosOr(alpn),
		SessionTicketsDisabled: true,
	}, nil
}

// UpstreamConfig is the client config for the proxy's own connection to
// the real server: verified against the system roots plus upstream_roots,
// with serverName as SNI and verification name. Verification is skipped
// only for hosts listed in insecure_upstream; callers should check
// Insecure and log loudly when it is true. alpn is offered (HTTP/1.1 when
// none is given; see UpstreamALPN).
func (i *Inspector) UpstreamConfig(serverName string, alpn ...string) *tls.Config {
	return &tls.Config{
		ServerName:         serverName,
		RootCAs:            i.roots,
		MinVersion:         tls.VersionTLS12,
		NextProtos:         protosOr(alpn),
		ClientSessionCache: i.sessions,
		InsecureSkipVerify: i.Insecure(serverName), //nolint:gosec // Opt-in per exact host via insecure_upstream.
	}
}

// Insecure reports whether upstream verification is disabled for host.
func (i *Inspector) Insecure(host string) bool {
	if len(i.insecure) == 0 {
		return false
	}
	h, err := normalizeHost(host)
	if err != nil {
		return false
	}
	_, ok := i.insecure[h]
	return ok
}

// CAExpiry is the inspection CA's NotAfter, for the "CA expiring" alert.
func (i *Inspector) CAExpiry() time.Time { return i.ca.cert.NotAfter }

// NonTLS is what to do with non-TLS bytes in a CONNECT meant for bumping.
func (i *Inspector) NonTLS() NonTLSMode { return i.nonTLS }
