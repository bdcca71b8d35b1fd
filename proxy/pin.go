package proxy

import "bytes"

// Connection-oriented authentication (NTLM, Negotiate/Kerberos) breaks
// HTTP's rule that a message stands alone: after the handshake the origin
// treats the TCP connection itself as the user. Such an upstream
// connection is pinned to the client connection that authenticated it, as
// Squid does, and never enters the shared pool: reused by anyone else it
// would serve them as that user.

// takePinned returns the connection pinned to this client for key, or
// nil. A pinned connection for another origin is closed: the client moved
// on, and nobody else may have it.
func (c *clientConn) takePinned(key poolKey) *upConn {
	up := c.pinned
	if up == nil {
		return nil
	}
	c.pinned = nil
	if up.key != key || !alive(up.conn) {
		up.conn.Close()
		return nil
	}
	return up
}

// pin keeps up for this client connection alone when its exchange used
// connection-oriented authentication; it reports whether it did.
func (c *clientConn) pin(up *upConn) bool {
	if !up.connAuth {
		return false
	}
	if hasUnread(up) {
		up.conn.Close()
		return true
	}
	if c.pinned != nil {
		c.pinned.conn.Close()
	}
	c.pinned = up
	return true
}

// releasePinned closes the pinned connection when the client connection ends.
func (c *clientConn) releasePinned() {
	if c.pinned != nil {
		c.pinned.conn.Close()
		c.pinned = nil
	}
}

// connAuthScheme reports whether an Authorization (request) or
// WWW-Authenticate (response) value names a connection-oriented scheme.
func connAuthScheme(v []byte) bool {
	for _, scheme := range [...]string{"NTLM", "Negotiate"} {
		if len(v) >= len(scheme) && asciiEqualFold(v[:len(scheme)], scheme) &&
			(len(v) == len(scheme) || v[len(scheme)] == ' ' || v[len(scheme)] == ',') {
			return true
		}
	}
	return false
}

// usesConnAuth reports whether any field named name in h carries a
// connection-oriented scheme.
func usesConnAuth(h *head, name string) bool {
	for i := range h.fields {
		if asciiEqualFold(h.name(i), name) && connAuthScheme(bytes.TrimSpace(h.value(i))) {
			return true
		}
	}
	return false
}
