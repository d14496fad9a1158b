// Command smartratelimit explains rate-limit headers, runs a demo of the
// limiter against a local rate-limited API, and inspects shared buckets.
//
// Usage:
//
//	smartratelimit explain [--now RFC3339] [--map SPEC] < response-head.txt
//	smartratelimit demo [flags]
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
)

type command struct {
	run  func(args []string, stdin io.Reader, stdout, stderr io.Writer) int
	help string
}

var commands = map[string]command{
	"explain": {runExplain, "read an HTTP response head on stdin and print what its rate-limit headers say, as JSON"},
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	c, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "smartratelimit: unknown command %q\n", args[0])
		usage(stderr)
		return 2
	}
	return c.run(args[1:], stdin, stdout, stderr)
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: smartratelimit <command> [flags]\n\ncommands:")
	for _, name := range []string{"explain", "demo", "status", "list", "clear"} {
		if c, ok := commands[name]; ok {
			fmt.Fprintf(w, "  %-8s %s\n", name, c.help)
		}
	}
}

// parseFlags parses args with fs, a subcommand's flag set whose Usage
// prints its full usage on stderr. It returns -1 to go on, 0 after -h or
// --help (the usage printed), and 2 for a bad flag, reported as one line
// on stderr naming the problem: the flag package would print the error
// and then the whole usage.
func parseFlags(fs *flag.FlagSet, args []string, stderr io.Writer) int {
	usage := fs.Usage
	fs.Usage = func() {}
	fs.SetOutput(io.Discard)
	err := fs.Parse(args)
	fs.Usage = usage
	fs.SetOutput(stderr)
	switch {
	case err == nil:
		return -1
	case errors.Is(err, flag.ErrHelp):
		fs.Usage()
		return 0
	}
	usageError(stderr, fs.Name(), "%v", err)
	return 2
}

// usageError prints a usage error of a subcommand as one line on stderr,
// with a pointer to its usage.
func usageError(stderr io.Writer, name, format string, a ...any) {
	fmt.Fprintf(stderr, "smartratelimit %s: %s (run 'smartratelimit %s -h' for usage)\n", name, fmt.Sprintf(format, a...), name)
}
