package resp

// Match reports whether key matches the glob pattern the way Redis's KEYS,
// SCAN MATCH and friends match it: '*' is any run of bytes (slashes too),
// '?' any one byte, "[abc]", "[a-z]" and "[^a]" a byte in (or not in) a
// class, and '\' makes the next byte literal. Unlike path.Match there are no
// malformed patterns: an unclosed class ends at the end of the pattern. It
// compares bytes, not runes. A pattern nesting '*' more than 1000 deep
// matches nothing, as in Redis. The pattern "*" matches every key, the
// empty one too, as in KEYS and SCAN.
func Match(pattern, key string) bool {
	if pattern == "*" {
		return true
	}
	skip := false
	return match(pattern, key, &skip, 0)
}

// match is Redis's stringmatchlen. skipLonger is set once the rest of the
// pattern after a '*' matched nowhere in the rest of the key: then no
// earlier '*' can match by consuming more either, which keeps patterns like
// "*a*a*a*b" from taking exponential time.
func match(p, s string, skipLonger *bool, nesting int) bool {
	if nesting > 1000 {
		return false
	}
	for len(p) > 0 && len(s) > 0 {
		switch p[0] {
		case '*':
			for len(p) > 1 && p[1] == '*' {
				p = p[1:]
			}
			if len(p) == 1 {
				return true
			}
			for len(s) > 0 {
				if match(p[1:], s, skipLonger, nesting+1) {
					return true
				}
				if *skipLonger {
					return false
				}
				s = s[1:]
			}
			*skipLonger = true
			return false
		case '?':
			s = s[1:]
		case '[':
			p = p[1:]
			not := len(p) > 0 && p[0] == '^'
			if not {
				p = p[1:]
			}
			matched := false
			for {
				if len(p) == 0 {
					// An unclosed class ends with the pattern; the p[1:]
					// after the switch leaves p empty.
					p = "]"
					break
				}
				if p[0] == '\\' && len(p) >= 2 {
					p = p[1:]
					if p[0] == s[0] {
						matched = true
					}
				} else if p[0] == ']' {
					break
				} else if len(p) >= 3 && p[1] == '-' {
					lo, hi := p[0], p[2]
					if lo > hi {
						lo, hi = hi, lo
					}
					p = p[2:]
					if s[0] >= lo && s[0] <= hi {
						matched = true
					}
				} else if p[0] == s[0] {
					matched = true
				}
				p = p[1:]
			}
			if not {
				matched = !matched
			}
			if !matched {
				return false
			}
			s = s[1:]
		case '\\':
			if len(p) >= 2 {
				p = p[1:]
			}
			fallthrough
		default:
			if p[0] != s[0] {
				return false
			}
			s = s[1:]
		}
		p = p[1:]
		if len(s) == 0 {
			for len(p) > 0 && p[0] == '*' {
				p = p[1:]
			}
			break
		}
	}
	return len(p) == 0 && len(s) == 0
}
