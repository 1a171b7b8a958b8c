// Package ascii checks short names made of ASCII classes, such as
// ^[a-z][a-z0-9_]{0,62}$, with a table instead of a regular expression: a
// bounded repetition compiles to a program with one copy of the class per
// repeat (120 KB and 1,700 allocations at start for {1,128}), and
// matching it costs far more than a loop.
package ascii

// Set is a set of bytes.
type Set [256]bool

// NewSet returns the set of the bytes named by class, written as inside a
// regular expression's brackets: single bytes and ranges such as a-z. A
// '-' first or last stands for itself.
func NewSet(class string) *Set {
	var s Set
	for i := 0; i < len(class); i++ {
		if i+2 < len(class) && class[i+1] == '-' {
			for c := int(class[i]); c <= int(class[i+2]); c++ {
				s[c] = true
			}
			i += 2
			continue
		}
		s[class[i]] = true
	}
	return &s
}

// All reports whether every byte of s is in the set.
func (set *Set) All(s string) bool {
	for i := 0; i < len(s); i++ {
		if !set[s[i]] {
			return false
		}
	}
	return true
}

// Name reports whether s is a byte of first followed by bytes of rest,
// min to max bytes in all: ^[first][rest]{min-1,max-1}$ with min >= 1.
func Name(s string, first, rest *Set, min, max int) bool {
	return len(s) >= min && len(s) <= max && first[s[0]] && rest.All(s[1:])
}
