package proxy

import "time"

// Metrics is the metrics sink (*metrics.Metrics); nil records nothing.
type Metrics = any

// observer is the one place where the proxy meets package metrics, so the
// request path reads as mechanism and every metric call site is one line.
type observer struct{ m Metrics }

func (o observer) SetConnectionLimit(n int)           {}
func (o observer) LimitRejected(scope, tenant string) {}
func (o observer) ConnOpened()                        {}
func (o observer) ConnClosed()                        {}
func (o observer) ProxyHeader(outcome string)         {}
func (o observer) AuthFailed(tenant string)           {}
func (o observer) Request(e *entry)                   {}
func (o observer) TunnelOpened(tenant string)         {}
func (o observer) TunnelClosed(tenant string)         {}

func (s *Server) observeDial(dns, connect time.Duration, err error) {}
