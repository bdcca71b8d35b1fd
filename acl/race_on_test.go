//go:build race

package acl

// raceEnabled makes the biggest tests smaller under the race detector,
// which slows map-heavy compiles about tenfold.
const raceEnabled = true
