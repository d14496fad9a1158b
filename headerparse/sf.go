package headerparse

import (
	"strconv"
	"strings"
)

// This file is a small parser for the Structured Field Values of RFC 9651
// (Lists and Dictionaries of Items with Parameters), enough for the IETF
// RateLimit fields. It never allocates except to unescape a String that
// holds backslash escapes. Inner Lists are validated and skipped.

type sfKind uint8

const (
	sfNone sfKind = iota
	sfInt
	sfDec
	sfStr
	sfTok
	sfBytes
	sfBool
	sfDate
	sfDisplay
	sfInner
)

// sfValue is a Bare Item.
type sfValue struct {
	kind sfKind
	num  float64 // sfInt, sfDec, sfDate
	str  string  // sfStr (unescaped), sfTok, sfBytes (the base64 text), sfDisplay (raw)
	b    bool    // sfBool
}

// isNum reports whether v is an Integer or a Decimal.
func (v sfValue) isNum() bool { return v.kind == sfInt || v.kind == sfDec }

// sfMember is one List member or Dictionary member.
type sfMember struct {
	key    string // Dictionary key; empty in Lists
	val    sfValue
	params string // the raw, already validated parameters (";a=1;b")
}

// param returns the value of the parameter named key.
func (m *sfMember) param(key string) (sfValue, bool) {
	p := sfParser{s: m.params}
	for p.i < len(p.s) && p.s[p.i] == ';' {
		p.i++
		p.skipSP()
		k, _ := p.key()
		v := sfValue{kind: sfBool, b: true}
		if p.i < len(p.s) && p.s[p.i] == '=' {
			p.i++
			v, _ = p.bare()
		}
		if k == key {
			return v, true
		}
	}
	return sfValue{}, false
}

// sfIter walks a List or Dictionary split over several field lines, as if
// the lines were joined with ", " (empty lines are skipped). After next
// returns false, bad reports whether the field was malformed: RFC 9651 and
// the RateLimit drafts then ignore the whole field. At most maxItems
// members are read; the rest of the field is ignored unread.
type sfIter struct {
	lines []string
	dict  bool
	line  int
	p     sfParser
	open  bool // p holds an unfinished line
	n     int
	bad   bool
}

func newSFIter(lines []string, dict bool) sfIter {
	if len(lines) > maxLines {
		lines = lines[:maxLines]
	}
	return sfIter{lines: lines, dict: dict}
}

func (it *sfIter) next(m *sfMember) bool {
	if it.bad || it.n >= maxItems {
		return false
	}
	for !it.open {
		if it.line >= len(it.lines) {
			return false
		}
		it.p = sfParser{s: it.lines[it.line]}
		it.line++
		it.p.skipOWS()
		it.open = it.p.i < len(it.p.s)
	}
	p := &it.p
	*m = sfMember{}
	ok := false
	if it.dict {
		if m.key, ok = p.key(); ok {
			if p.i < len(p.s) && p.s[p.i] == '=' {
				p.i++
				m.val, m.params, ok = p.itemOrInner()
			} else {
				m.val = sfValue{kind: sfBool, b: true}
				m.params, ok = p.params()
			}
		}
	} else {
		m.val, m.params, ok = p.itemOrInner()
	}
	if ok {
		p.skipOWS()
		switch {
		case p.i >= len(p.s):
			it.open = false
		case p.s[p.i] == ',':
			p.i++
			p.skipOWS()
			ok = p.i < len(p.s) // a trailing comma is an error
		default:
			ok = false
		}
	}
	if !ok {
		it.bad = true
		return false
	}
	it.n++
	return true
}

type sfParser struct {
	s string
	i int
}

func (p *sfParser) skipSP() {
	for p.i < len(p.s) && p.s[p.i] == ' ' {
		p.i++
	}
}

func (p *sfParser) skipOWS() {
	for p.i < len(p.s) && (p.s[p.i] == ' ' || p.s[p.i] == '\t') {
		p.i++
	}
}

func (p *sfParser) itemOrInner() (sfValue, string, bool) {
	if p.i < len(p.s) && p.s[p.i] == '(' {
		p.i++
		for {
			p.skipSP()
			if p.i >= len(p.s) {
				return sfValue{}, "", false
			}
			if p.s[p.i] == ')' {
				p.i++
				break
			}
			if _, ok := p.bare(); !ok {
				return sfValue{}, "", false
			}
			if _, ok := p.params(); !ok {
				return sfValue{}, "", false
			}
			if p.i < len(p.s) && p.s[p.i] != ' ' && p.s[p.i] != ')' {
				return sfValue{}, "", false
			}
		}
		params, ok := p.params()
		return sfValue{kind: sfInner}, params, ok
	}
	v, ok := p.bare()
	if !ok {
		return sfValue{}, "", false
	}
	params, ok := p.params()
	return v, params, ok
}

// params validates the parameters at p and returns their raw text.
func (p *sfParser) params() (string, bool) {
	start := p.i
	for p.i < len(p.s) && p.s[p.i] == ';' {
		p.i++
		p.skipSP()
		if _, ok := p.key(); !ok {
			return "", false
		}
		if p.i < len(p.s) && p.s[p.i] == '=' {
			p.i++
			if _, ok := p.bare(); !ok {
				return "", false
			}
		}
	}
	return p.s[start:p.i], true
}

func (p *sfParser) key() (string, bool) {
	start := p.i
	if p.i >= len(p.s) || !(p.s[p.i] >= 'a' && p.s[p.i] <= 'z' || p.s[p.i] == '*') {
		return "", false
	}
	p.i++
	for p.i < len(p.s) {
		c := p.s[p.i]
		if c >= 'a' && c <= 'z' || isDigit(c) || c == '_' || c == '-' || c == '.' || c == '*' {
			p.i++
			continue
		}
		break
	}
	return p.s[start:p.i], true
}

func (p *sfParser) bare() (sfValue, bool) {
	if p.i >= len(p.s) {
		return sfValue{}, false
	}
	switch c := p.s[p.i]; {
	case c == '-' || isDigit(c):
		return p.number(sfInt)
	case c == '"':
		return p.str()
	case c == '*' || isLetter(c):
		return p.token()
	case c == ':':
		return p.bytes()
	case c == '?':
		if p.i+1 < len(p.s) && (p.s[p.i+1] == '0' || p.s[p.i+1] == '1') {
			v := sfValue{kind: sfBool, b: p.s[p.i+1] == '1'}
			p.i += 2
			return v, true
		}
		return sfValue{}, false
	case c == '@':
		p.i++
		v, ok := p.number(sfDate)
		return v, ok && v.kind == sfDate
	case c == '%':
		return p.display()
	}
	return sfValue{}, false
}

// number parses an Integer (at most 15 digits) or a Decimal (at most 12
// integer digits and 1 to 3 fractional digits); kind sfDate asks for an Integer.
func (p *sfParser) number(kind sfKind) (sfValue, bool) {
	start := p.i
	if p.i < len(p.s) && p.s[p.i] == '-' {
		p.i++
	}
	digits := p.i
	for p.i < len(p.s) && isDigit(p.s[p.i]) {
		p.i++
	}
	intDigits := p.i - digits
	if intDigits == 0 || intDigits > 15 {
		return sfValue{}, false
	}
	if p.i < len(p.s) && p.s[p.i] == '.' && kind != sfDate {
		if intDigits > 12 {
			return sfValue{}, false
		}
		p.i++
		frac := p.i
		for p.i < len(p.s) && isDigit(p.s[p.i]) {
			p.i++
		}
		if n := p.i - frac; n < 1 || n > 3 {
			return sfValue{}, false
		}
		kind = sfDec
	}
	v, err := strconv.ParseFloat(p.s[start:p.i], 64)
	if err != nil {
		return sfValue{}, false
	}
	return sfValue{kind: kind, num: v}, true
}

func (p *sfParser) str() (sfValue, bool) {
	p.i++ // opening quote
	start := p.i
	escaped := false
	for p.i < len(p.s) {
		c := p.s[p.i]
		switch {
		case c == '\\':
			if p.i+1 >= len(p.s) || (p.s[p.i+1] != '"' && p.s[p.i+1] != '\\') {
				return sfValue{}, false
			}
			escaped = true
			p.i += 2
		case c == '"':
			raw := p.s[start:p.i]
			p.i++
			if escaped {
				raw = unescape(raw)
			}
			return sfValue{kind: sfStr, str: raw}, true
		case c < 0x20 || c > 0x7e:
			return sfValue{}, false
		default:
			p.i++
		}
	}
	return sfValue{}, false
}

func unescape(raw string) string {
	var b strings.Builder
	b.Grow(len(raw))
	for i := 0; i < len(raw); i++ {
		if raw[i] == '\\' {
			i++
		}
		b.WriteByte(raw[i])
	}
	return b.String()
}

func (p *sfParser) token() (sfValue, bool) {
	start := p.i
	p.i++
	for p.i < len(p.s) && (isTchar(p.s[p.i]) || p.s[p.i] == ':' || p.s[p.i] == '/') {
		p.i++
	}
	return sfValue{kind: sfTok, str: p.s[start:p.i]}, true
}

func (p *sfParser) bytes() (sfValue, bool) {
	p.i++ // opening colon
	start := p.i
	for p.i < len(p.s) {
		c := p.s[p.i]
		switch {
		case c == ':':
			v := sfValue{kind: sfBytes, str: p.s[start:p.i]}
			p.i++
			return v, true
		case isLetter(c) || isDigit(c) || c == '+' || c == '/' || c == '=':
			p.i++
		default:
			return sfValue{}, false
		}
	}
	return sfValue{}, false
}

func (p *sfParser) display() (sfValue, bool) {
	if p.i+1 >= len(p.s) || p.s[p.i+1] != '"' {
		return sfValue{}, false
	}
	p.i += 2
	start := p.i
	for p.i < len(p.s) {
		c := p.s[p.i]
		switch {
		case c == '"':
			v := sfValue{kind: sfDisplay, str: p.s[start:p.i]}
			p.i++
			return v, true
		case c < 0x20 || c > 0x7e:
			return sfValue{}, false
		}
		p.i++
	}
	return sfValue{}, false
}

// isTchar reports whether c is a token character of RFC 9110.
func isTchar(c byte) bool {
	if isLetter(c) || isDigit(c) {
		return true
	}
	switch c {
	case '!', '#', '$', '%', '&', '\'', '*', '+', '-', '.', '^', '_', '`', '|', '~':
		return true
	}
	return false
}
