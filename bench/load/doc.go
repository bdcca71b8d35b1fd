// Package load is egressd's load generator: an embedded origin, a client
// that opens connections the way an Azure Private Link Service does (a PROXY
// header on every new connection), and the benchmark modes that drive a
// forward proxy and measure it from outside, including its CPU time and
// resident memory read from /proc.
//
// Every mode verifies every response (status, length, checksum) and never
// computes a figure from a failed operation: a run with errors reports the
// errors and withholds its figures.
package load
