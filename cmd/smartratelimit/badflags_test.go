package main

import (
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

// README: bad flags exit 2 with one line on stderr. Every subcommand keeps
// that promise: the line names the command and the problem (and how to
// get the usage), nothing goes to stdout, and no usage text follows.
func TestEverySubcommandReportsBadFlagsInOneLine(t *testing.T) {
	var names []string
	for name := range commands {
		names = append(names, name)
	}
	sort.Strings(names)
	// A bad value of a flag each command has, and a flag missing its value.
	badValue := map[string][]string{
		"explain": {"--now"},
		"demo":    {"--requests", "many"},
		"status":  {"--json=maybe"},
		"list":    {"--json=maybe"},
		"clear":   {"--all=maybe"},
	}
	for _, name := range names {
		cases := [][]string{
			{name, "--bogus"},
			{name, "-bogus", "x"},
			{name, "--bogus=1"},
		}
		if bv, ok := badValue[name]; ok {
			cases = append(cases, append([]string{name}, bv...))
		} else {
			t.Errorf("no bad-value case for subcommand %q: add one", name)
		}
		if name == "status" || name == "clear" { // flags may follow keys
			cases = append(cases, []string{name, "https://api.github.com", "--bogus"})
		}
		for _, args := range cases {
			code, out, errOut := runCLI(args...)
			assert.Equal(t, 2, code, "%q", args)
			assert.Empty(t, out, "%q", args)
			assert.Equal(t, 1, strings.Count(errOut, "\n"), "%q: one line on stderr, got %q", args, errOut)
			assert.True(t, strings.HasSuffix(errOut, "\n"), "%q: %q", args, errOut)
			assert.True(t, strings.HasPrefix(errOut, "smartratelimit "+name+": "), "%q: %q", args, errOut)
			assert.NotContains(t, errOut, "usage:", "%q", args)
			assert.Contains(t, errOut, "smartratelimit "+name+" -h", "%q: a hint to the usage", args)
			flagName := "-bogus"
			if bv := badValue[name]; len(bv) > 0 && args[1] == bv[0] {
				flagName = "-" + strings.TrimLeft(strings.SplitN(bv[0], "=", 2)[0], "-")
			}
			assert.Contains(t, errOut, flagName, "%q: the line names the flag", args)
		}
		// -h still prints the full usage, exit 0.
		code, out, errOut := runCLI(name, "-h")
		assert.Equal(t, 0, code, name)
		assert.Empty(t, out, name)
		assert.Contains(t, errOut, "usage: smartratelimit "+name, name)
		assert.Greater(t, strings.Count(errOut, "\n"), 2, "%s -h: the full usage", name)
	}
}

// explain's unexpected positional argument is a usage error as well: one
// line, exit 2.
func TestExplainUnexpectedArgumentIsOneLine(t *testing.T) {
	code, out, errOut := runCLI("explain", "response.txt")
	assert.Equal(t, 2, code)
	assert.Empty(t, out)
	assert.Equal(t, 1, strings.Count(errOut, "\n"), "%q", errOut)
	assert.Contains(t, errOut, `unexpected argument "response.txt"`)
}
