package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"strings"
	"text/tabwriter"
	"time"

	srl "github.com/smartratelimit/smartratelimit"
	"github.com/smartratelimit/smartratelimit/backend"
	"github.com/smartratelimit/smartratelimit/backend/postgres"
	"github.com/smartratelimit/smartratelimit/middleware"
)

func init() {
	commands["status"] = command{runStatus, "show the buckets in a storage (--storage postgres://…)"}
	commands["list"] = command{runList, "list the keys in a storage"}
	commands["clear"] = command{runClear, "forget keys (or --all) in a storage"}
}

// storageOptions returns the limiter options for a --storage value and a
// function that releases what they opened.
func storageOptions(ctx context.Context, storage string) ([]middleware.Option, func(), error) {
	if storage == "" || strings.EqualFold(storage, "memory") {
		return nil, func() {}, nil
	}
	b, err := openStorage(ctx, storage)
	if err != nil {
		return nil, nil, err
	}
	return []middleware.Option{middleware.WithBackend(b)}, func() { b.Close() }, nil
}

// openStorage opens a --storage URL failing closed: a command must not
// report on, clear or demonstrate an empty local stand-in for an
// unreachable database.
func openStorage(ctx context.Context, storage string) (srl.Backend, error) {
	return backend.Open(ctx, storage, postgres.WithFailClosed())
}

type storageFlags struct {
	fs      *flag.FlagSet
	storage string
	json    bool
}

// newStorageFlags makes the flags of a storage command; about, when not
// empty, is printed in its help between the usage line and the flags.
func newStorageFlags(name, usage, about string, stderr io.Writer) *storageFlags {
	f := &storageFlags{fs: flag.NewFlagSet(name, flag.ContinueOnError)}
	f.fs.SetOutput(stderr)
	f.fs.StringVar(&f.storage, "storage", "memory", "where buckets live: memory or postgres://user@host:port/db")
	f.fs.BoolVar(&f.json, "json", false, "print JSON instead of a table")
	f.fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: smartratelimit %s\n\n", usage)
		if about != "" {
			fmt.Fprintf(stderr, "%s\n", about)
		}
		fmt.Fprintln(stderr, "flags:")
		f.fs.PrintDefaults()
	}
	return f
}

// parse parses args (flags may follow positional arguments) and opens the
// storage; code >= 0 means exit with it.
func (f *storageFlags) parse(args []string, stderr io.Writer) (srl.Backend, []string, int) {
	var pos []string
	for {
		if code := parseFlags(f.fs, args, stderr); code >= 0 {
			return nil, nil, code
		}
		if f.fs.NArg() == 0 {
			break
		}
		pos = append(pos, f.fs.Arg(0))
		args = f.fs.Args()[1:]
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	b, err := openStorage(ctx, f.storage)
	if err != nil {
		fmt.Fprintf(stderr, "smartratelimit %s: %v\n", f.fs.Name(), err)
		return nil, nil, 1
	}
	return b, pos, -1
}

// keyRule is how status and clear read their KEY|URL arguments; it is
// part of their help text.
const keyRule = `KEY or URL: an argument with an explicit port, scheme://host:port, optionally
followed by a scope path and/or a #partition suffix (and no query), is a key
exactly as list prints it and is used as is: https://api.github.com:443/search
is that scoped key. Any other URL names its host: its host key,
scheme://host:port with the scheme's default port, path and query dropped:
https://api.github.com/search means https://api.github.com:443. An argument
without "://" is a key as is.
`

// keyArg turns a status or clear argument into a key (see keyRule): a key
// as list prints it (explicit port) is used as is; a URL without a port
// becomes its host key; anything else is a key already.
func keyArg(s string) string {
	if !strings.Contains(s, "://") || isListedKey(s) {
		return s
	}
	if k, err := middleware.KeyOf(s); err == nil {
		return k
	}
	return s
}

// isListedKey reports whether s starts as the keys list prints do:
// scheme://host:port with a numeric port and no user info, followed by
// nothing, a path ('/…') or a partition ('#…').
func isListedKey(s string) bool {
	i := strings.Index(s, "://")
	if i <= 0 || strings.ContainsAny(s[:i], "/?#") {
		return false
	}
	auth := s[i+3:]
	if j := strings.IndexAny(auth, "/?#"); j >= 0 {
		if auth[j] == '?' {
			return false // keys have no query
		}
		auth = auth[:j]
	}
	host, port, err := net.SplitHostPort(auth)
	if err != nil || host == "" || port == "" || strings.ContainsAny(host, "@") {
		return false
	}
	for _, c := range port {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

func runList(args []string, _ io.Reader, stdout, stderr io.Writer) int {
	f := newStorageFlags("list", "list [--storage URL] [--json]", "", stderr)
	b, pos, code := f.parse(args, stderr)
	if code >= 0 {
		return code
	}
	defer b.Close()
	if len(pos) > 0 {
		fmt.Fprintf(stderr, "smartratelimit list: unexpected argument %q\n", pos[0])
		return 2
	}
	keys, err := b.Keys(context.Background())
	if err != nil {
		fmt.Fprintln(stderr, "smartratelimit list:", err)
		return 1
	}
	if f.json {
		if keys == nil {
			keys = []string{}
		}
		return writeJSON(stdout, keys)
	}
	for _, k := range keys {
		fmt.Fprintln(stdout, k)
	}
	return 0
}

func runClear(args []string, _ io.Reader, stdout, stderr io.Writer) int {
	f := newStorageFlags("clear", "clear (KEY|URL ...|--all) [--storage URL]", keyRule, stderr)
	all := f.fs.Bool("all", false, "forget every key")
	b, pos, code := f.parse(args, stderr)
	if code >= 0 {
		return code
	}
	defer b.Close()
	ctx := context.Background()
	switch {
	case *all && len(pos) > 0, !*all && len(pos) == 0:
		fmt.Fprintln(stderr, "smartratelimit clear: name keys or pass --all (not both)")
		return 2
	case *all:
		if err := b.ClearAll(ctx); err != nil {
			fmt.Fprintln(stderr, "smartratelimit clear:", err)
			return 1
		}
		fmt.Fprintln(stdout, "cleared all keys")
		return 0
	}
	for _, k := range pos {
		if err := b.Clear(ctx, keyArg(k)); err != nil {
			fmt.Fprintln(stderr, "smartratelimit clear:", err)
			return 1
		}
		fmt.Fprintln(stdout, "cleared", keyArg(k))
	}
	return 0
}

// limitJSON is one limit of a key in status --json.
type limitJSON struct {
	Name           string  `json:"name"`
	Dimension      string  `json:"dimension"`
	Source         string  `json:"source"`
	Limit          float64 `json:"limit"`
	WindowSeconds  float64 `json:"window_seconds"`
	Remaining      float64 `json:"remaining"`
	Reserved       float64 `json:"reserved"`
	ResetInSeconds float64 `json:"reset_in_seconds"`
	Utilization    float64 `json:"utilization"`
}

type statusJSON struct {
	Key            string      `json:"key"`
	Limits         []limitJSON `json:"limits"`
	BlockedSeconds float64     `json:"blocked_for_seconds"`
	Seq            uint64      `json:"seq"`
	LastUsed       time.Time   `json:"last_used"`
	Degraded       bool        `json:"degraded"`
}

func runStatus(args []string, _ io.Reader, stdout, stderr io.Writer) int {
	f := newStorageFlags("status", "status [KEY|URL ...] [--storage URL] [--json]", keyRule, stderr)
	b, pos, code := f.parse(args, stderr)
	if code >= 0 {
		return code
	}
	defer b.Close()
	ctx := context.Background()
	keys := make([]string, 0, len(pos))
	for _, p := range pos {
		keys = append(keys, keyArg(p))
	}
	if len(keys) == 0 {
		var err error
		if keys, err = b.Keys(ctx); err != nil {
			fmt.Fprintln(stderr, "smartratelimit status:", err)
			return 1
		}
	}
	now := time.Now()
	out := []statusJSON{}
	for _, k := range keys {
		st, err := b.Status(ctx, k)
		if err != nil {
			fmt.Fprintln(stderr, "smartratelimit status:", err)
			return 1
		}
		s := statusJSON{Key: st.Key, Seq: st.Seq, LastUsed: st.LastUsed, Degraded: st.Degraded, Limits: []limitJSON{}}
		if st.BlockedUntil.After(now) {
			s.BlockedSeconds = round3(st.BlockedUntil.Sub(now).Seconds())
		}
		for _, l := range st.Limits {
			s.Limits = append(s.Limits, limitJSON{
				Name: l.Name, Dimension: string(l.Dimension.OrRequests()), Source: string(l.Source),
				Limit: l.Limit.Limit, WindowSeconds: l.Window.Seconds(), Remaining: l.Remaining, Reserved: l.Reserved,
				ResetInSeconds: round3(max(l.ResetAt.Sub(now).Seconds(), 0)), Utilization: round3(l.Utilization()),
			})
		}
		out = append(out, s)
	}
	if f.json {
		return writeJSON(stdout, out)
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "KEY\tLIMIT\tSOURCE\tREMAINING\tRESERVED\tRESETS IN\tUSED\tBLOCKED FOR")
	for _, s := range out {
		blocked := "-"
		if s.BlockedSeconds > 0 {
			blocked = fmt.Sprintf("%.1fs", s.BlockedSeconds)
		}
		if len(s.Limits) == 0 {
			fmt.Fprintf(tw, "%s\t-\t-\t-\t-\t-\t-\t%s\n", s.Key, blocked)
		}
		for _, l := range s.Limits {
			fmt.Fprintf(tw, "%s\t%g %s/%gs\t%s\t%g\t%g\t%.1fs\t%.0f%%\t%s\n", s.Key, l.Limit, l.Dimension, l.WindowSeconds,
				l.Source, l.Remaining, l.Reserved, l.ResetInSeconds, l.Utilization*100, blocked)
		}
	}
	tw.Flush()
	return 0
}

func writeJSON(w io.Writer, v any) int {
	b, err := json.Marshal(v)
	if err != nil {
		return 1
	}
	fmt.Fprintln(w, string(b))
	return 0
}
