package resp

import (
	"strings"
	"testing"
)

func TestMatch(t *testing.T) {
	for _, tc := range []struct {
		pattern, key string
		want         bool
	}{
		{"*", "", true},
		{"*", "a/b", true},
		{"**", "", false}, // as Redis: only "*" itself is special
		{"", "", true},
		{"", "a", false},
		{"a*", "a", true},
		{"a*b", "a/x/b", true},
		{"a*b", "a/x/c", false},
		{"?", "", false},
		{"?", "é"[:1], true},
		{"h?llo", "hello", true},
		{"h[ae]llo", "hallo", true},
		{"h[ae]llo", "hillo", false},
		{"h[^e]llo", "hallo", true},
		{"h[^e]llo", "hello", false},
		{"h[a-b]llo", "hbllo", true},
		{"h[b-a]llo", "hallo", true}, // reversed ranges work
		{"h[a-b]llo", "hcllo", false},
		{`h\*llo`, "h*llo", true},
		{`h\*llo`, "hello", false},
		{`[\]]`, "]", true},
		{"[abc", "a", true}, // an unclosed class ends with the pattern
		{"[abc", "ab", false},
		{"[", "", false},
		{`\`, `\`, true},
		{"user:*:name", "user:42:name", true},
		{"*a*a*a*a*a*a*a*a*a*a*b", strings.Repeat("a", 100), false},
	} {
		if got := Match(tc.pattern, tc.key); got != tc.want {
			t.Errorf("Match(%q, %q) = %v, want %v", tc.pattern, tc.key, got, tc.want)
		}
	}
}

func TestMatchDeepNesting(t *testing.T) {
	// More than 1000 nested stars match nothing, as in Redis, and return.
	p := strings.Repeat("*a", 1100) + "b"
	if Match(p, strings.Repeat("a", 1200)+"b") {
		t.Error("a pattern nesting 1100 stars matched")
	}
}

func BenchmarkMatchPathological(b *testing.B) {
	p := strings.Repeat("*a", 20) + "b"
	s := strings.Repeat("a", 200)
	for b.Loop() {
		Match(p, s)
	}
}
