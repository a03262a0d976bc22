package conditions

import "reflect"

var anyType = reflect.TypeFor[any]()

// MatchGlob reports whether value matches pattern, where * matches any run
// of characters (slashes included: a source repository URI is matched
// whole) and ? any one character; everything else matches itself.
func MatchGlob(pattern, value string) bool {
	p, v := []rune(pattern), []rune(value)
	// Iterative wildcard matching with backtracking to the last star.
	pi, vi, star, mark := 0, 0, -1, 0
	for vi < len(v) {
		switch {
		case pi < len(p) && (p[pi] == '?' || p[pi] == v[vi]):
			pi++
			vi++
		case pi < len(p) && p[pi] == '*':
			star, mark = pi, vi
			pi++
		case star >= 0:
			pi = star + 1
			mark++
			vi = mark
		default:
			return false
		}
	}
	for pi < len(p) && p[pi] == '*' {
		pi++
	}
	return pi == len(p)
}
