package headerparse

import "strings"

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
	num  float64 // sfInt, sfDec, sfDate
	str  string  // sfStr (unescaped), sfTok, sfBytes (the base64 text), sfDisplay (raw)
	kind sfKind
	b    bool // sfBool
}

// isNum reports whether v is an Integer or a Decimal.
func (v sfValue) isNum() bool { return v.kind == sfInt || v.kind == sfDec }

// maxParams is how many parameters of one member are kept; more are
// validated and dropped (the RateLimit fields define four).
const maxParams = 8

// sfParam is one parameter of a member.
type sfParam struct {
	key string
	val sfValue
}

// sfMember is one List member or Dictionary member.
type sfMember struct {
	key    string // Dictionary key; empty in Lists
	val    sfValue
	params [maxParams]sfParam
	np     int
}

// paramList returns the parameters kept for m, in order.
func (m *sfMember) paramList() []sfParam { return m.params[:m.np] }

// param returns the value of the parameter named key: the last one when
// the key is repeated (RFC 9651 §4.2.3.2: a later value overwrites).
func (m *sfMember) param(key string) (sfValue, bool) {
	for i := m.np - 1; i >= 0; i-- {
		if m.params[i].key == key {
			return m.params[i].val, true
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
	m.key, m.val, m.np = "", sfValue{}, 0
	ok := false
	if it.dict {
		if m.key, ok = p.key(); ok {
			if p.i < len(p.s) && p.s[p.i] == '=' {
				p.i++
				ok = p.itemOrInner(m)
			} else {
				m.val = sfValue{kind: sfBool, b: true}
				ok = p.params(m)
			}
		}
	} else {
		ok = p.itemOrInner(m)
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

// The scanning loops below work on local copies of p.s and p.i: through
// the pointer the compiler would reload both on every byte.

func (p *sfParser) skipSP() {
	s, i := p.s, p.i
	for i < len(s) && s[i] == ' ' {
		i++
	}
	p.i = i
}

func (p *sfParser) skipOWS() {
	s, i := p.s, p.i
	for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
		i++
	}
	p.i = i
}

// itemOrInner reads an Item or an Inner List, with its parameters, into m
// (an Inner List is validated and kept as sfInner only).
func (p *sfParser) itemOrInner(m *sfMember) bool {
	if p.i < len(p.s) && p.s[p.i] == '(' {
		p.i++
		for {
			p.skipSP()
			if p.i >= len(p.s) {
				return false
			}
			if p.s[p.i] == ')' {
				p.i++
				break
			}
			if _, ok := p.bare(); !ok || !p.params(nil) {
				return false
			}
			if p.i < len(p.s) && p.s[p.i] != ' ' && p.s[p.i] != ')' {
				return false
			}
		}
		m.val = sfValue{kind: sfInner}
		return p.params(m)
	}
	v, ok := p.bare()
	if !ok {
		return false
	}
	m.val = v
	return p.params(m)
}

// params reads the parameters at p, keeping the first maxParams in m
// (when not nil); it reports whether they are well-formed.
func (p *sfParser) params(m *sfMember) bool {
	for p.i < len(p.s) && p.s[p.i] == ';' {
		p.i++
		p.skipSP()
		k, ok := p.key()
		if !ok {
			return false
		}
		v := sfValue{kind: sfBool, b: true}
		if p.i < len(p.s) && p.s[p.i] == '=' {
			p.i++
			if v, ok = p.bare(); !ok {
				return false
			}
		}
		if m != nil && m.np < maxParams {
			m.params[m.np] = sfParam{k, v}
			m.np++
		}
	}
	return true
}

func (p *sfParser) key() (string, bool) {
	s, start := p.s, p.i
	if start >= len(s) || !(s[start] >= 'a' && s[start] <= 'z' || s[start] == '*') {
		return "", false
	}
	i := start + 1
	for i < len(s) {
		c := s[i]
		if c >= 'a' && c <= 'z' || isDigit(c) || c == '_' || c == '-' || c == '.' || c == '*' {
			i++
			continue
		}
		break
	}
	p.i = i
	return s[start:i], true
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
// integer digits and 1 to 3 fractional digits); kind sfDate asks for an
// Integer. With at most 15 digits the mantissa and the power of ten are
// exact, so one division gives the correctly rounded value.
func (p *sfParser) number(kind sfKind) (sfValue, bool) {
	s, i := p.s, p.i
	neg := i < len(s) && s[i] == '-'
	if neg {
		i++
	}
	var mant uint64
	start := i
	for i < len(s) && isDigit(s[i]) {
		mant = mant*10 + uint64(s[i]-'0')
		i++
	}
	intDigits := i - start
	if intDigits == 0 || intDigits > 15 {
		return sfValue{}, false
	}
	v := float64(mant)
	if i < len(s) && s[i] == '.' && kind != sfDate {
		if intDigits > 12 {
			return sfValue{}, false
		}
		i++
		start = i
		for i < len(s) && isDigit(s[i]) {
			mant = mant*10 + uint64(s[i]-'0')
			i++
		}
		frac := i - start
		if frac < 1 || frac > 3 {
			return sfValue{}, false
		}
		v = float64(mant) / pow10[frac]
		kind = sfDec
	}
	if neg {
		v = -v
	}
	p.i = i
	return sfValue{kind: kind, num: v}, true
}

func (p *sfParser) str() (sfValue, bool) {
	s := p.s
	start := p.i + 1 // after the opening quote
	escaped := false
	for i := start; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\':
			if i+1 >= len(s) || (s[i+1] != '"' && s[i+1] != '\\') {
				return sfValue{}, false
			}
			escaped = true
			i++
		case c == '"':
			raw := s[start:i]
			p.i = i + 1
			if escaped {
				raw = unescape(raw)
			}
			return sfValue{kind: sfStr, str: raw}, true
		case c < 0x20 || c > 0x7e:
			return sfValue{}, false
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
	s, start := p.s, p.i
	i := start + 1
	for i < len(s) && (isTchar(s[i]) || s[i] == ':' || s[i] == '/') {
		i++
	}
	p.i = i
	return sfValue{kind: sfTok, str: s[start:i]}, true
}

func (p *sfParser) bytes() (sfValue, bool) {
	s := p.s
	start := p.i + 1 // after the opening colon
	for i := start; i < len(s); i++ {
		switch c := s[i]; {
		case c == ':':
			p.i = i + 1
			return sfValue{kind: sfBytes, str: s[start:i]}, true
		case !(isLetter(c) || isDigit(c) || c == '+' || c == '/' || c == '='):
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
