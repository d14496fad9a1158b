package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/textproto"
	"strings"
	"time"

	srl "github.com/smartratelimit/smartratelimit"
	"github.com/smartratelimit/smartratelimit/headerparse"
)

// maxHead is the most input explain reads: a response head longer than
// this is refused.
const maxHead = 1 << 20

const explainUsage = "usage: smartratelimit explain [--now RFC3339] [--map SPEC] < response-head.txt"

// runExplain reads an HTTP response head on stdin (a status line such as
// "HTTP/1.1 429 Too Many Requests" or "HTTP/2 429", then header lines up
// to a blank line or the end) and prints what its rate-limit headers say
// as one JSON object (see explainOutput). Exit status: 0 on success, 2 for
// bad flags, 1 for input that is not a response head.
func runExplain(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("explain", flag.ContinueOnError)
	fs.SetOutput(stderr)
	now := fs.String("now", "", "count seconds from this RFC 3339 `time` when the response has no Date header (default: the local clock)")
	mapSpec := fs.String("map", "", "read the API's own headers first, as named by `SPEC`, for example\n"+
		"limit=X-My-Limit,remaining=X-My-Left,reset=X-My-Reset,reset_format=delta_ms,window=60s")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), explainUsage)
		fs.PrintDefaults()
	}
	if code := parseFlags(fs, args, stderr); code >= 0 {
		return code
	}
	fail := func(code int, format string, a ...any) int {
		fmt.Fprintf(stderr, "smartratelimit explain: "+format+"\n", a...)
		return code
	}
	if fs.NArg() > 0 {
		usageError(stderr, "explain", "unexpected argument %q: the response head is read from stdin", fs.Arg(0))
		return 2
	}
	received := time.Now()
	if *now != "" {
		t, err := time.Parse(time.RFC3339, *now)
		if err != nil {
			return fail(2, "--now %q is not an RFC 3339 time such as 2026-11-26T12:00:00Z", *now)
		}
		received = t
	}
	var p headerparse.Parser
	if *mapSpec != "" {
		m, err := headerparse.ParseMapping(*mapSpec)
		if err != nil {
			return fail(2, "--map: %v", err)
		}
		p.Mapping = &m
	}

	status, h, err := readHead(stdin)
	if err != nil {
		return fail(1, "%v", err)
	}
	obs := p.Parse(status, h, received)
	enc := json.NewEncoder(stdout)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(explain(&obs)); err != nil {
		return fail(1, "writing the result: %v", err)
	}
	return 0
}

// explainOutput is what explain prints. Its top-level limit, remaining,
// reset_in_seconds and window_seconds describe the binding quota
// (Observation.Binding); quotas lists every quota. Unknown values are null.
type explainOutput struct {
	Status     int              `json:"status"`
	Limited    bool             `json:"limited"`
	Limit      srl.Opt[float64] `json:"limit"`
	Remaining  srl.Opt[float64] `json:"remaining"`
	ResetIn    srl.Opt[float64] `json:"reset_in_seconds"`
	Window     srl.Opt[float64] `json:"window_seconds"`
	RetryAfter srl.Opt[float64] `json:"retry_after_seconds"`
	Quotas     []explainQuota   `json:"quotas"`
}

type explainQuota struct {
	Name         string           `json:"name"`
	Dimension    string           `json:"dimension"`
	Limit        srl.Opt[float64] `json:"limit"`
	Remaining    srl.Opt[float64] `json:"remaining"`
	ResetIn      srl.Opt[float64] `json:"reset_in_seconds"`
	Window       srl.Opt[float64] `json:"window_seconds"`
	PartitionKey srl.Opt[string]  `json:"partition_key"`
	Source       string           `json:"source"`
}

func explain(o *srl.Observation) explainOutput {
	out := explainOutput{
		Status:     o.Status,
		Limited:    o.Limited,
		RetryAfter: secondsOf(o.RetryAfter),
		Quotas:     make([]explainQuota, 0, len(o.Quotas)),
	}
	if b, ok := o.Binding(); ok {
		out.Limit, out.Remaining = b.Limit, b.Remaining
		out.ResetIn, out.Window = secondsOf(b.ResetIn), secondsOf(b.Window)
	}
	for _, q := range o.Quotas {
		eq := explainQuota{
			Name:      q.Name,
			Dimension: string(q.Dimension),
			Limit:     q.Limit,
			Remaining: q.Remaining,
			ResetIn:   secondsOf(q.ResetIn),
			Window:    secondsOf(q.Window),
			Source:    q.Source,
		}
		if q.PartitionKey != "" {
			eq.PartitionKey = srl.Some(q.PartitionKey)
		}
		out.Quotas = append(out.Quotas, eq)
	}
	return out
}

func secondsOf(d srl.Opt[time.Duration]) srl.Opt[float64] {
	if !d.Valid {
		return srl.Opt[float64]{}
	}
	return srl.Some(d.Value.Seconds())
}

// readHead reads a response head: a status line, header lines (CRLF or LF,
// obsolete line folding allowed) up to a blank line or the end of input.
// Interim 1xx heads before the final one are skipped. Whatever follows
// the head (a body) is ignored.
func readHead(r io.Reader) (int, http.Header, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxHead+1))
	if err != nil {
		return 0, nil, fmt.Errorf("reading stdin: %v", err)
	}
	text := strings.TrimPrefix(string(data), "\ufeff")
	if strings.TrimSpace(text) == "" {
		return 0, nil, errors.New("no input: pipe an HTTP response head on stdin, for example the output of curl -sI URL")
	}
	lineNo := 0
	next := func() (string, bool) {
		if text == "" {
			return "", false
		}
		var line string
		line, text, _ = strings.Cut(text, "\n")
		lineNo++
		return strings.TrimSuffix(line, "\r"), true
	}
	for {
		first, _ := next()
		status, err := parseStatusLine(first)
		if err != nil {
			return 0, nil, err
		}
		h := http.Header{}
		last, ended := "", false
		for {
			line, ok := next()
			if !ok {
				if len(data) > maxHead {
					return 0, nil, fmt.Errorf("the response head is longer than %d bytes", maxHead)
				}
				break
			}
			if line == "" {
				ended = true
				break
			}
			if line[0] == ' ' || line[0] == '\t' { // obsolete line folding
				if last == "" {
					return 0, nil, fmt.Errorf("line %d: continuation line %q before any header", lineNo, shorten(line))
				}
				vs := h[last]
				vs[len(vs)-1] += " " + strings.Trim(line, " \t")
				continue
			}
			name, value, ok := strings.Cut(line, ":")
			if !ok {
				return 0, nil, fmt.Errorf("line %d: %q is not a header line (want Name: value)", lineNo, shorten(line))
			}
			if !validHeaderName(name) {
				return 0, nil, fmt.Errorf("line %d: %q is not a valid header name", lineNo, shorten(name))
			}
			last = textproto.CanonicalMIMEHeaderKey(name)
			h[last] = append(h[last], strings.Trim(value, " \t"))
		}
		if status < 200 && ended && strings.HasPrefix(text, "HTTP/") {
			continue // 100 Continue, 103 Early Hints: the final head follows
		}
		return status, h, nil
	}
}

// parseStatusLine reads "HTTP/1.1 429 Too Many Requests", "HTTP/2 429" and the like.
func parseStatusLine(line string) (int, error) {
	bad := fmt.Errorf("first line %q is not an HTTP status line such as \"HTTP/1.1 429 Too Many Requests\"", shorten(line))
	proto, rest, ok := strings.Cut(line, " ")
	if !ok || !validProto(proto) {
		return 0, bad
	}
	code, _, _ := strings.Cut(strings.TrimLeft(rest, " "), " ")
	if len(code) != 3 || code[0] < '1' || code[0] > '5' || !isDigits(code) {
		return 0, fmt.Errorf("status code %q in the first line is not an HTTP status code (100 to 599)", shorten(code))
	}
	return int(code[0]-'0')*100 + int(code[1]-'0')*10 + int(code[2]-'0'), nil
}

// validProto accepts HTTP/1.0, HTTP/1.1, HTTP/2, HTTP/2.0, HTTP/3.
func validProto(p string) bool {
	v, ok := strings.CutPrefix(p, "HTTP/")
	if !ok {
		return false
	}
	major, minor, dot := strings.Cut(v, ".")
	return len(major) == 1 && isDigits(major) && (!dot || len(minor) == 1 && isDigits(minor))
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// validHeaderName reports whether name is an RFC 9110 token.
func validHeaderName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0 {
			continue
		}
		return false
	}
	return true
}

// shorten keeps error messages to one readable line.
func shorten(s string) string {
	if len(s) > 60 {
		return s[:60] + "…"
	}
	return s
}
