// Package textclip shortens text that pbxfleet repeats from outside (a
// refused value, a node's reason, an error) so that a hostile or huge value
// cannot make an error, a log line or a stored record arbitrarily long.
package textclip

import "unicode/utf8"

// Echo is how many bytes of a refused value an error repeats.
const Echo = 64

// marker ends a cut text.
const marker = "…"

// Clip returns s when it is at most n bytes, else its first bytes cut at a
// rune boundary with "…" added, n bytes at most in all (n below the marker's
// length gives the marker alone).
func Clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := max(n-len(marker), 0)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + marker
}

// Value is Clip(s, Echo) plus the marker's room: the first Echo bytes of a
// value quoted in an error. Quote the result (%q) so that no newline in it can
// start a line of its own.
func Value(s string) string { return Clip(s, Echo+len(marker)) }
