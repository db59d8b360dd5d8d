package reviewlist

import (
	"errors"
	"fmt"
	"path"
	"strings"
	"unicode/utf8"
)

// Validate reports why pattern cannot be a Manual Review List entry, or
// nil. Its messages are written for the administrator who typed it.
//
// A pattern holds a-z, 0-9, '-' and '.', the wildcards * and ?, and
// character classes ([a-z], [^0-9]); it is at most MaxLen characters.
// Upper case is refused, not lowered: names are matched in lower case, so
// an upper-case pattern would never match, and quietly storing something
// other than what was sent is the caller's choice (the API lowers what it
// is sent before calling Validate). Non-ASCII is refused because the
// skeleton comparison already catches look-alikes in other scripts; a
// name in another script is listed by its A-label (xn--…).
//
// A malformed pattern, which path.Match could never match, is refused
// with an error that wraps path.ErrBadPattern.
func Validate(pattern string) error {
	if pattern == "" {
		return errors.New("pattern is empty; give a shell-style pattern over DNS names, such as *bank*")
	}
	if n := utf8.RuneCountInString(pattern); n > MaxLen {
		return fmt.Errorf("pattern is %d characters long; at most %d are allowed (the longest DNS name)", n, MaxLen)
	}
	if strings.ContainsFunc(pattern, func(r rune) bool { return 'A' <= r && r <= 'Z' }) {
		return fmt.Errorf("pattern %q has upper-case letters; names are matched in lower case, so write %q", pattern, asciiLower(pattern))
	}
	for i := 0; i < len(pattern); {
		switch c := pattern[i]; {
		case literal(c), c == '*', c == '?':
			i++
		case c == '[':
			end, err := class(pattern, i)
			if err != nil {
				return err
			}
			i = end
		case c == ']':
			return fmt.Errorf("pattern %q has a ] at position %d with no [ before it", pattern, i+1)
		case c >= utf8.RuneSelf:
			// Every byte before i is ASCII, so i counts characters.
			r, _ := utf8.DecodeRuneInString(pattern[i:])
			return fmt.Errorf("pattern %q has the non-ASCII character %q at position %d; write patterns in ASCII: *bank* already catches look-alikes such as a Cyrillic bаnk or an accented bänk, and a name in another script is listed by its A-label (xn--…)", pattern, r, i+1)
		default:
			return fmt.Errorf("pattern %q has %q at position %d; a pattern holds a-z, 0-9, '-' and '.', the wildcards * and ?, and classes such as [a-z] or [^0-9]", pattern, string(c), i+1)
		}
	}
	// class should have caught every malformed pattern; path.Match checks
	// the whole pattern when it does not match, so this is a backstop.
	if _, err := path.Match(pattern, ""); err != nil {
		return malformed("pattern %q is malformed", pattern)
	}
	return nil
}

// literal reports whether c may stand for itself in a pattern.
func literal(c byte) bool {
	return 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '.'
}

// class checks the character class opening at p[start] and returns the
// index after its ']'. A member is a-z, 0-9 or '.', or a range of them;
// '-' can only make a range, as path.Match reads it.
func class(p string, start int) (int, error) {
	pos := start + 1 // 1-based, as messages count
	i := start + 1
	if i < len(p) && p[i] == '^' {
		i++
	}
	first := i
	for {
		if i >= len(p) {
			return 0, malformed("pattern %q is malformed: the [ at position %d has no closing ]", p, pos)
		}
		c := p[i]
		switch {
		case c == ']' && i == first:
			return 0, malformed("pattern %q is malformed: the [ at position %d holds no characters; write them inside, as in [a-z]", p, pos)
		case c == ']':
			return i + 1, nil
		case c == '-':
			return 0, malformed("pattern %q is malformed: a - inside the [ at position %d must stand between two characters, as in [a-z]", p, pos)
		case !member(c):
			return 0, badMember(p, c, pos)
		}
		i++
		if i >= len(p) || p[i] != '-' {
			continue
		}
		if i+1 >= len(p) {
			return 0, malformed("pattern %q is malformed: the [ at position %d has no closing ]", p, pos)
		}
		hi := p[i+1]
		switch {
		case hi == ']':
			return 0, malformed("pattern %q is malformed: a - inside the [ at position %d must stand between two characters, as in [a-z]", p, pos)
		case !member(hi):
			return 0, badMember(p, hi, pos)
		case hi < c:
			return 0, malformed("pattern %q is malformed: the range %c-%c inside the [ at position %d runs backwards and matches nothing; write %c-%c", p, c, hi, pos, hi, c)
		}
		i += 2
	}
}

func member(c byte) bool {
	return 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '.'
}

func badMember(p string, c byte, pos int) error {
	what := fmt.Sprintf("%q", string(rune(c)))
	if c >= utf8.RuneSelf {
		what = "a non-ASCII character"
	}
	return fmt.Errorf("pattern %q has %s inside the [ at position %d; a class holds a-z, 0-9 and '.', ranges such as a-z, and a leading ^ to negate it", p, what, pos)
}

// badPatternError is a refusal of a malformed pattern: its text is for
// the administrator, and it unwraps to path.ErrBadPattern for code.
type badPatternError struct{ msg string }

func (e *badPatternError) Error() string { return e.msg }
func (e *badPatternError) Unwrap() error { return path.ErrBadPattern }

func malformed(format string, args ...any) error {
	return &badPatternError{msg: fmt.Sprintf(format, args...)}
}
