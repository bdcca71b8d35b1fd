package proxy

import (
	"fmt"
	"net"
	"syscall"
	"time"
)

// listenConfig prepares the listening socket before bind and listen.
//
// Keepalives: Linux copies SO_KEEPALIVE, TCP_KEEPIDLE, TCP_KEEPINTVL and
// TCP_KEEPCNT from the listener into each socket accept(2) returns, so
// they are set here once and Go's own per-connection setup is off
// (KeepAlive: -1). That removes four setsockopt calls per connection, 4 of
// the 53 syscalls a new tunnel cost before (issue 18, bench/PROFILE.md).
//
// TCP_DEFER_ACCEPT: accept(2) returns a connection only once its first
// bytes have arrived (PLS sends the PROXY header with the first segment),
// so the first read finds them instead of parking on the poller, and a
// peer that connects and stays silent costs no goroutine until the kernel
// hands it over anyway after about headerTimeout; the header deadline then
// refuses it as before.
func listenConfig(ka net.KeepAliveConfig, headerTimeout time.Duration) net.ListenConfig {
	return net.ListenConfig{
		KeepAlive: -1,
		Control: func(_, _ string, rc syscall.RawConn) error {
			var serr error
			set := func(fd uintptr, level, opt, v int) {
				if e := syscall.SetsockoptInt(int(fd), level, opt, v); e != nil && serr == nil {
					serr = fmt.Errorf("setsockopt %d/%d: %w", level, opt, e)
				}
			}
			err := rc.Control(func(fd uintptr) {
				set(fd, syscall.SOL_SOCKET, syscall.SO_KEEPALIVE, 1)
				set(fd, syscall.IPPROTO_TCP, syscall.TCP_KEEPIDLE, secondsUp(ka.Idle))
				set(fd, syscall.IPPROTO_TCP, syscall.TCP_KEEPINTVL, secondsUp(ka.Interval))
				set(fd, syscall.IPPROTO_TCP, syscall.TCP_KEEPCNT, ka.Count)
				set(fd, syscall.IPPROTO_TCP, syscall.TCP_DEFER_ACCEPT, secondsUp(headerTimeout))
			})
			if err != nil {
				return err
			}
			return serr
		},
	}
}

// secondsUp rounds d up to whole seconds, at least one, as net.TCPConn's
// SetKeepAliveConfig does, so inherited values equal the ones Go would set.
func secondsUp(d time.Duration) int {
	return max(int((d+time.Second-1)/time.Second), 1)
}
