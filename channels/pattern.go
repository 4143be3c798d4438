package channels

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Pattern is a parsed topic pattern of a channel rule: either an exact topic
// such as "lobby", or a prefix followed by a single trailing "*" such as
// "room:*", which matches every topic that starts with the prefix. A lone "*"
// matches every topic. The zero Pattern matches only the empty topic.
type Pattern struct {
	src      string
	prefix   string
	wildcard bool
}

// ParsePattern parses a topic pattern. A "*" is only allowed as the last
// character; empty patterns and patterns containing whitespace, control
// characters or invalid UTF-8 are rejected. Errors name the pattern.
func ParsePattern(s string) (Pattern, error) {
	if s == "" {
		return Pattern{}, fmt.Errorf("invalid topic pattern %q: empty", s)
	}
	if !utf8.ValidString(s) {
		return Pattern{}, fmt.Errorf("invalid topic pattern %q: not valid UTF-8", s)
	}
	for i, r := range s {
		switch {
		case unicode.IsSpace(r):
			return Pattern{}, fmt.Errorf("invalid topic pattern %q: whitespace at byte %d", s, i)
		case unicode.IsControl(r):
			return Pattern{}, fmt.Errorf("invalid topic pattern %q: control character at byte %d", s, i)
		case r == '*' && i != len(s)-1:
			return Pattern{}, fmt.Errorf("invalid topic pattern %q: * is only allowed as the last character", s)
		}
	}
	if prefix, ok := strings.CutSuffix(s, "*"); ok {
		return Pattern{src: s, prefix: prefix, wildcard: true}, nil
	}
	return Pattern{src: s, prefix: s}, nil
}

// Match reports whether topic matches the pattern. For a wildcard pattern
// subtopic is the part of topic that "*" matched (possibly empty); for an
// exact pattern it is always empty.
func (p Pattern) Match(topic string) (subtopic string, ok bool) {
	if !p.wildcard {
		return "", topic == p.prefix
	}
	if !strings.HasPrefix(topic, p.prefix) {
		return "", false
	}
	return topic[len(p.prefix):], true
}

// String returns the pattern as it was written.
func (p Pattern) String() string { return p.src }
