//go:build !linux

package proxy

import (
	"net"
	"time"
)

// listenConfig sets the keepalives on each accepted connection: accepted
// sockets are not known to inherit them from the listener here.
func listenConfig(ka net.KeepAliveConfig, _ time.Duration) net.ListenConfig {
	return net.ListenConfig{KeepAliveConfig: ka}
}
