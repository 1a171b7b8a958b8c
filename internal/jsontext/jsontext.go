// Package jsontext writes JSON text by hand where encoding/json's
// reflection costs too much: records, events and log lines.
package jsontext

import "unicode/utf8"

const hex = "0123456789abcdef"

// plain8 reports whether none of the eight bytes in x needs escaping or a
// closer look: all are ASCII, none is a control character, '"' or '\\'.
// (Bit tricks from "Bit Twiddling Hacks": a byte below n, a zero byte.)
func plain8(x uint64) bool {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	below := func(x uint64, n byte) uint64 { return (x - ones*uint64(n)) &^ x & highs }
	zero := func(x uint64) uint64 { return (x - ones) &^ x & highs }
	return x&highs|below(x, 0x20)|zero(x^(ones*'"'))|zero(x^(ones*'\\')) == 0
}

// AppendString appends s to b as a JSON string, escaping what JSON
// requires and the line separators U+2028 and U+2029, as encoding/json
// does (but not <, > and &: responses are JSON, not HTML). Invalid UTF-8
// becomes U+FFFD. log/slog's JSON handler escapes strings the same way.
func AppendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		// Eight bytes at a time while none needs a look: text is mostly
		// plain ASCII, and rendering it was a tenth of a list's CPU.
		for i+8 <= len(s) && plain8(uint64(s[i])|uint64(s[i+1])<<8|uint64(s[i+2])<<16|uint64(s[i+3])<<24|
			uint64(s[i+4])<<32|uint64(s[i+5])<<40|uint64(s[i+6])<<48|uint64(s[i+7])<<56) {
			i += 8
		}
		if i >= len(s) {
			break
		}
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\')
				b = append(b, c)
			case '\n':
				b = append(b, `\n`...)
			case '\r':
				b = append(b, `\r`...)
			case '\t':
				b = append(b, `\t`...)
			default:
				b = append(b, `\u00`...)
				b = append(b, hex[c>>4])
				b = append(b, hex[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, `\u202`...)
			b = append(b, hex[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	b = append(b, '"')
	return b
}
