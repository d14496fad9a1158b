package headerparse

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	srl "github.com/smartratelimit/smartratelimit"
)

// member is an sfMember in comparable form.
type member struct {
	key    string
	val    sfValue
	params []sfParam
}

func read(lines []string, dict bool) ([]member, bool) {
	var got []member
	it := newSFIter(lines, dict)
	var m sfMember
	for it.next(&m) {
		got = append(got, member{m.key, m.val, append([]sfParam(nil), m.paramList()...)})
	}
	return got, !it.bad
}

func sfValid(lines []string, dict bool) bool {
	_, ok := read(lines, dict)
	return ok
}

func intv(v float64) sfValue { return sfValue{kind: sfInt, num: v} }

func TestSFList(t *testing.T) {
	cases := []struct {
		name  string
		lines []string
		want  []member // ignored when ok is false: malformed
		ok    bool
	}{
		{"empty", nil, nil, true},
		{"blank line", []string{"  "}, nil, true},
		{"integers and params", []string{"10, 10;w=1"}, []member{
			{val: sfValue{kind: sfInt, num: 10}},
			{val: sfValue{kind: sfInt, num: 10}, params: []sfParam{{"w", intv(1)}}},
		}, true},
		{"string, bytes, token, bool, decimal, date, display", []string{`"a";pk=:aGk=:, tok/x:y, ?0, -1.5, @1659578233, %"caf%c3%a9"`}, []member{
			{val: sfValue{kind: sfStr, str: "a"}, params: []sfParam{{"pk", sfValue{kind: sfBytes, str: "aGk="}}}},
			{val: sfValue{kind: sfTok, str: "tok/x:y"}},
			{val: sfValue{kind: sfBool, b: false}},
			{val: sfValue{kind: sfDec, num: -1.5}},
			{val: sfValue{kind: sfDate, num: 1659578233}},
			{val: sfValue{kind: sfDisplay, str: "caf%c3%a9"}},
		}, true},
		{"escapes", []string{`"a\"b\\c"`}, []member{{val: sfValue{kind: sfStr, str: `a"b\c`}}}, true},
		{"inner list", []string{`(1 "x";a=2);b, 3`}, []member{
			{val: sfValue{kind: sfInner}, params: []sfParam{{"b", sfValue{kind: sfBool, b: true}}}},
			{val: sfValue{kind: sfInt, num: 3}},
		}, true},
		{"several lines join", []string{`"a";q=1`, "", `"b";q=2`}, []member{
			{val: sfValue{kind: sfStr, str: "a"}, params: []sfParam{{"q", intv(1)}}},
			{val: sfValue{kind: sfStr, str: "b"}, params: []sfParam{{"q", intv(2)}}},
		}, true},
		{"spaces after semicolon", []string{`"x"; q=1; w=60`}, []member{{val: sfValue{kind: sfStr, str: "x"}, params: []sfParam{{"q", intv(1)}, {"w", intv(60)}}}}, true},
		{"trailing comma", []string{"1,"}, nil, false},
		{"double comma", []string{"1,,2"}, nil, false},
		{"unterminated string", []string{`"abc`}, nil, false},
		{"bad escape", []string{`"a\x"`}, nil, false},
		{"non-ascii in string", []string{"\"caf\xc3\xa9\""}, nil, false},
		{"uppercase param key", []string{"1;W=2"}, nil, false},
		{"16-digit integer", []string{"1234567890123456"}, nil, false},
		{"4 fraction digits", []string{"1.2345"}, nil, false},
		{"13-digit decimal", []string{"1234567890123.5"}, nil, false},
		{"junk after item", []string{"1 2"}, nil, false},
		{"unterminated bytes", []string{":aGk="}, nil, false},
		{"bad bytes char", []string{":a-b:"}, nil, false},
		{"bad boolean", []string{"?2"}, nil, false},
		{"unterminated inner list", []string{"(1 2"}, nil, false},
		{"decimal date", []string{"@1.5"}, nil, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := read(tc.lines, false)
			assert.Equal(t, tc.ok, ok)
			if tc.ok {
				assert.Equal(t, tc.want, got)
			}
		})
	}
}

func TestSFDictionary(t *testing.T) {
	got, ok := read([]string{"limit=10, remaining=1, reset=7, flag;x=1"}, true)
	assert.True(t, ok)
	assert.Equal(t, []member{
		{key: "limit", val: sfValue{kind: sfInt, num: 10}},
		{key: "remaining", val: sfValue{kind: sfInt, num: 1}},
		{key: "reset", val: sfValue{kind: sfInt, num: 7}},
		{key: "flag", val: sfValue{kind: sfBool, b: true}, params: []sfParam{{"x", intv(1)}}},
	}, got)
	assert.False(t, sfValid([]string{"Limit=10"}, true), "keys are lower case")
	assert.False(t, sfValid([]string{"limit=10,"}, true))
}

func TestSFParam(t *testing.T) {
	got, ok := read([]string{`"x"; q=100;w=60;qu="content-bytes";pk=:aGk=:;flag;a=1;b=2;c=3;d=4`}, false)
	assert.True(t, ok)
	assert.Len(t, got[0].params, maxParams, "parameters past maxParams are dropped")
	var m sfMember
	it := newSFIter([]string{`"x"; q=100;w=60;qu="content-bytes";pk=:aGk=:;flag`}, false)
	assert.True(t, it.next(&m))
	v, ok := m.param("w")
	assert.True(t, ok)
	assert.Equal(t, intv(60), v)
	v, ok = m.param("qu")
	assert.True(t, ok)
	assert.Equal(t, "content-bytes", v.str)
	v, ok = m.param("flag")
	assert.True(t, ok)
	assert.Equal(t, sfValue{kind: sfBool, b: true}, v)
	_, ok = m.param("t")
	assert.False(t, ok)
}

func TestSFMemberCap(t *testing.T) {
	lines := make([]string, 0, 200)
	for i := 0; i < 200; i++ {
		lines = append(lines, "1")
	}
	it := newSFIter(lines, false)
	count := 0
	var m sfMember
	for it.next(&m) {
		count++
	}
	assert.Equal(t, maxItems, count)
	assert.False(t, it.bad)
}

// RFC 9651 §4.2.3.2: a parameter given twice keeps its last value, in a
// lookup by name as in the parameter list the draft-10 readers walk.
func TestSFParamLastWins(t *testing.T) {
	var m sfMember
	it := newSFIter([]string{`10;w=1;w=60`}, false)
	assert.True(t, it.next(&m))
	v, ok := m.param("w")
	assert.True(t, ok)
	assert.Equal(t, intv(60), v)

	// Draft -04 to -07 policies are read by name, draft -10 ones by walking
	// the list: both see w=60.
	got := Parse(200, hdr("RateLimit-Policy: 10;w=1;w=60"), t0)
	assert.Equal(t, []srl.Quota{{Dimension: "requests", Limit: n(10), Window: d(time.Minute), Source: "ietf-draft06"}}, got.Quotas)
	got = Parse(200, hdr(`RateLimit-Policy: "a";q=10;w=1;w=60`), t0)
	assert.Equal(t, []srl.Quota{{Name: "a", Dimension: "requests", Limit: n(10), Window: d(time.Minute), Source: "ietf-draft10"}}, got.Quotas)
}
