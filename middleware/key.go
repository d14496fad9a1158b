package middleware

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"

	"github.com/go-resty/resty/v2"
)

// ErrInvalidURL reports a request URL the limiter cannot key: not
// absolute after resolving the client's base URL, or not parseable. The
// request is not sent.
var ErrInvalidURL = errors.New("smartratelimit: invalid request URL")

// resolve returns the request's absolute URL: resty runs user hooks before
// it joins a relative URL with the client's base URL, so the limiter does
// the same join. User info and query are dropped here and never kept.
func resolve(c *resty.Client, r *resty.Request) (URL, error) {
	raw := expandPathParams(c, r)
	if !isAbs(raw) {
		base := c.BaseURL
		if base == "" {
			base = c.HostURL
		}
		if base == "" {
			return URL{}, fmt.Errorf("%w: relative URL %q and no base URL", ErrInvalidURL, redact(raw))
		}
		if !strings.HasPrefix(raw, "/") {
			raw = "/" + raw
		}
		raw = strings.TrimRight(base, "/") + raw
	}
	u, err := url.Parse(raw)
	if err != nil {
		return URL{}, fmt.Errorf("%w: %q", ErrInvalidURL, redact(raw))
	}
	return fromURL(u)
}

// expandPathParams returns the request's URL with its path parameters
// filled in as resty will fill them after the hooks ran: "{name}" takes
// the request's path parameter (escaped), else the client's (escaped),
// else the request's raw one, else the client's raw one; a name without a
// value, and "{}", stay as they are.
func expandPathParams(c *resty.Client, r *resty.Request) string {
	raw := r.URL
	if !strings.Contains(raw, "{") ||
		len(r.PathParams)+len(c.PathParams)+len(r.RawPathParams)+len(c.RawPathParams) == 0 {
		return raw
	}
	value := func(name string) (string, bool) {
		if v, ok := r.PathParams[name]; ok {
			return url.PathEscape(v), true
		}
		if v, ok := c.PathParams[name]; ok {
			return url.PathEscape(v), true
		}
		if v, ok := r.RawPathParams[name]; ok {
			return v, true
		}
		v, ok := c.RawPathParams[name]
		return v, ok
	}
	var b strings.Builder
	for {
		open := strings.IndexByte(raw, '{')
		if open < 0 {
			break
		}
		end := strings.IndexByte(raw[open:], '}')
		if end < 0 {
			break
		}
		end += open
		b.WriteString(raw[:open])
		if v, ok := value(raw[open+1 : end]); ok && end > open+1 {
			b.WriteString(v)
		} else {
			b.WriteString(raw[open : end+1])
		}
		raw = raw[end+1:]
	}
	b.WriteString(raw)
	return b.String()
}

// isAbs reports whether raw starts with a scheme: "://" before any '/',
// '?' or '#', so "/login?next=https://x" is relative.
func isAbs(raw string) bool { return schemeEnd(raw) > 0 }

// schemeEnd returns the index of the "://" that ends raw's scheme: the
// first "://", when no '/', '?' or '#' comes before it; else -1. It is on
// every request's path, so it is one loop over bytes.
func schemeEnd(raw string) int {
	for i := 0; i < len(raw); i++ {
		switch raw[i] {
		case ':':
			if i > 0 && i+2 < len(raw) && raw[i+1] == '/' && raw[i+2] == '/' {
				return i
			}
		case '/', '?', '#':
			return -1
		}
	}
	return -1
}

// KeyOf returns the default key of a URL string (scheme://host:port):
// the key under which [Limiter.Status] finds a host.
func KeyOf(rawURL string) (string, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "", fmt.Errorf("%w: %q", ErrInvalidURL, redact(rawURL))
	}
	ku, err := fromURL(u)
	if err != nil {
		return "", err
	}
	return HostKey(ku), nil
}

func fromURL(u *url.URL) (URL, error) {
	scheme := strings.ToLower(u.Scheme)
	host := strings.ToLower(u.Hostname())
	if scheme == "" || host == "" || strings.ContainsAny(host, "{} ") {
		return URL{}, fmt.Errorf("%w: %q is not an absolute URL", ErrInvalidURL, redactURL(u))
	}
	port := u.Port()
	if port == "" {
		port = defaultPort(scheme)
	}
	if strings.Contains(host, ":") { // IPv6 literal
		host = "[" + host + "]"
	}
	return URL{Scheme: scheme, Host: host, Port: port, Path: u.EscapedPath()}, nil
}

// hostPort is the host as option maps name it: "host" for the scheme's
// default port, else "host:port".
func (u URL) hostPort() string {
	if u.Port == defaultPort(u.Scheme) {
		return u.Host
	}
	return net.JoinHostPort(strings.Trim(u.Host, "[]"), u.Port)
}

// optionHost returns the host an option names (WithHostLimits, WithScope,
// WithHostProfile) in hostPort's form, which requests are matched by:
// "host" for the scheme's default port, else "host:port". It takes
// "host", "host:port" (a bare :80 or :443 is the default port of http or
// https, so the host alone), an IPv6 literal with or without brackets, or
// a URL "scheme://host[:port][/]" normalised as request URLs are. It
// reports false for anything no request could match.
func optionHost(s string) (string, bool) {
	if schemeEnd(s) > 0 {
		u, err := url.Parse(s)
		if err != nil || u.User != nil || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" ||
			u.Path != "" && u.Path != "/" || strings.HasSuffix(u.Host, ":") {
			return "", false
		}
		ku, err := fromURL(u)
		if err != nil || ku.Port == "" || !validPort(ku.Port) {
			return "", false
		}
		return ku.hostPort(), true
	}
	if s == "" || strings.ContainsAny(s, "/?#@{} \t\r\n\\") {
		return "", false
	}
	host, port := s, ""
	if strings.HasPrefix(s, "[") {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return "", false
		}
		host = s[1:end]
		if rest := s[end+1:]; rest != "" {
			if rest[0] != ':' || !validPort(rest[1:]) {
				return "", false
			}
			port = rest[1:]
		}
	} else if strings.Count(s, ":") == 1 { // host:port; more colons: an IPv6 literal
		host, port, _ = strings.Cut(s, ":")
		if !validPort(port) {
			return "", false
		}
	}
	host = strings.ToLower(host)
	if host == "" || strings.ContainsAny(host, "[]") {
		return "", false
	}
	if port != "" && port != "80" && port != "443" {
		return net.JoinHostPort(host, port), true
	}
	if strings.Contains(host, ":") {
		return "[" + host + "]", true
	}
	return host, true
}

// validPort reports whether p is a port number, 1 to 65535.
func validPort(p string) bool {
	n, err := strconv.Atoi(p)
	return err == nil && n >= 1 && n <= 65535 && p[0] != '+' && p[0] != '-'
}

// redact removes user info and query from a URL-ish string for messages.
func redact(raw string) string {
	if u, err := url.Parse(raw); err == nil {
		return redactURL(u)
	}
	if i := strings.IndexAny(raw, "?#"); i >= 0 {
		raw = raw[:i]
	}
	if i := strings.LastIndex(raw, "@"); i >= 0 { // a password may hold '@'
		raw = raw[i+1:]
	}
	return raw
}

func redactURL(u *url.URL) string {
	c := *u
	c.User = nil
	c.RawQuery = ""
	c.ForceQuery = false
	c.Fragment = ""
	c.RawFragment = ""
	return c.String()
}

// defaultPartitionSecret keys the partition hash when WithPartitionSecret
// is not given.
var defaultPartitionSecret = []byte("smartratelimit-partition")

// hashPartition turns a partition value (possibly a secret) into a short,
// stable tag: an HMAC-SHA256 under secret, so that someone who can read
// the shared table cannot test guesses of a credential without the secret.
func hashPartition(secret []byte, v string) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(v))
	return hex.EncodeToString(m.Sum(nil)[:12])
}

// sameAuthority reports whether two URLs name the same scheme, host and
// port (a redirect within one key).
func sameAuthority(a, b *url.URL) bool {
	if a == nil || b == nil {
		return a == b
	}
	if a.Host == b.Host && strings.EqualFold(a.Scheme, b.Scheme) {
		return true
	}
	ua, err1 := fromURL(a)
	ub, err2 := fromURL(b)
	return err1 == nil && err2 == nil && ua.Scheme == ub.Scheme && ua.Host == ub.Host && ua.Port == ub.Port
}
