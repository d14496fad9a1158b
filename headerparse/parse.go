package headerparse

import (
	"math"
	"net/http"
	"net/textproto"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	srl "github.com/smartratelimit/smartratelimit"
)

// Parser turns a response's status and headers into an Observation. The
// zero value reads the standard formats only; set Mapping to read an API's
// own headers first (see [Mapping]). A Parser holds no state: one value may
// be used by many goroutines at once.
//
// Profiles per host are the caller's business: the middleware keeps a
// host→Mapping map and uses a Parser with the response host's Mapping.
type Parser struct {
	// Mapping, when not nil, names headers to read before the standard formats.
	Mapping *Mapping
}

// Parse reads every rate-limit header format this package knows from h
// (see the package documentation) and returns what they say. received is
// when the response arrived; relative values count from it, and absolute
// times are converted against the response's Date header when it has a
// valid one (else against received), so a wrong local clock changes
// nothing. Parse never panics and never reads the clock.
//
// Parse is (&Parser{}).Parse: the standard formats only.
func Parse(status int, h http.Header, received time.Time) srl.Observation {
	var p Parser
	return p.Parse(status, h, received)
}

// Parse reads p.Mapping's headers, when set, then every standard format,
// and returns what they say; see the package-level [Parse].
func (p *Parser) Parse(status int, h http.Header, received time.Time) srl.Observation {
	var o srl.Observation
	p.ParseInto(&o, status, h, received)
	return o
}

// ParseInto is [Parser.Parse] writing its result into o and reusing the
// storage of o.Quotas: once that has room for the quotas found, parsing
// allocates nothing. For callers that parse many responses with a buffer
// of their own; o.Quotas must not be shared with anything else.
func (p *Parser) ParseInto(o *srl.Observation, status int, h http.Header, received time.Time) {
	// Field by field, here and for o below: a struct literal is built in
	// a temporary whose copy stalls on store forwarding.
	var c ctx
	c.h, c.received, c.mapIdx = h, received, -1
	c.dst, c.qs = o.Quotas[:0], o.Quotas[:0]
	c.scan()
	// A response served from a cache (Age > 0) did not reach the server's
	// limiter, and its fields tell the state when it was generated: only
	// its status and retry hints count (the drafts say so of theirs).
	if c.fam&famAge == 0 || !c.cached() {
		c.quotas(p)
	} else if p != nil && p.Mapping != nil {
		c.mapping(p.Mapping) // for its retry hint, and the names it takes
		c.truncate(0)
		c.mapIdx = -1
	}
	if c.fam&famRetry != 0 {
		c.retry()
	}
	qs, limited := c.finish(status)
	*o = srl.Observation{}
	o.Status, o.Received, o.Quotas = status, received, qs
	o.RetryAfter, o.Limited = c.retryAfter, limited
}

// quotas reads the quota families scan found, the Mapping's first.
func (c *ctx) quotas(p *Parser) {
	if p != nil && p.Mapping != nil {
		c.mapping(p.Mapping)
	}
	if c.fam&famXRL != 0 {
		c.xRateLimit()
	}
	if c.fam&famOpenAI != 0 {
		c.openAI()
	}
	if c.fam&famXRLDyn != 0 {
		c.xRateLimitSuffixed()
	}
	if c.fam&famLinear != 0 {
		c.linear()
	}
	if c.fam&famXRateL != 0 {
		c.xRateLimitDash()
	}
	if c.fam&(famIETF|famBeta) != 0 {
		if c.fam&famIETF != 0 {
			c.ietf(&ietfStd)
		}
		if c.fam&famBeta != 0 {
			c.ietf(&ietfBeta)
		}
	}
	if c.fam&famAnthropic != 0 {
		c.anthropic()
	}
	if c.fam&famShopify != 0 {
		c.shopify()
	}
	if c.fam&famSalesforce != 0 {
		c.salesforce()
	}
	if c.fam&famHubSpot != 0 {
		c.hubspot()
	}
	if c.fam&famAzure != 0 {
		c.azure()
	}
}

// Sources: the header family each quota came from.
const (
	srcMapping    = "mapping"
	srcXRL        = "x-ratelimit"
	srcGitHub     = "github"
	srcDiscord    = "discord"
	srcOpenAI     = "openai"
	srcKong       = "kong"
	srcLinear     = "linear"
	srcXRateLimit = "x-rate-limit"
	srcGitLab     = "gitlab"
	srcAnthropic  = "anthropic"
	srcShopify    = "shopify"
	srcSalesforce = "salesforce"
	srcHubSpot    = "hubspot"
	srcAzure      = "azure"
)

// Header families, found by one pass over the header names.
const (
	famXRL        uint32 = 1 << iota // X-RateLimit-{Limit,Remaining,Reset,Used,Reset-After,Resource,Bucket,...}
	famOpenAI                        // X-RateLimit-{Limit,Remaining,Reset}-{Requests,Tokens}
	famXRLDyn                        // other X-RateLimit-{Limit,Remaining,Reset}-<suffix> (Kong windows, OpenAI extras)
	famLinear                        // X-RateLimit-{Requests,Complexity}-*
	famXRateL                        // X-Rate-Limit, X-Rate-Limit-*
	famIETF                          // RateLimit, RateLimit-*
	famBeta                          // Beta-RateLimit, Beta-RateLimit-*
	famRetry                         // Retry-After, Retry-After-Ms, X-Retry-In, X-RateLimit-Retry-After
	famAnthropic                     // Anthropic-RateLimit-*
	famShopify                       // X-Shopify-Shop-Api-Call-Limit
	famSalesforce                    // Sforce-Limit-Info
	famHubSpot                       // X-HubSpot-RateLimit-*
	famAzure                         // X-Ms-RateLimit-Remaining-*
	famAge                           // Age
	famDate                          // Date
	famXRLExtra                      // X-RateLimit-{Reset-After,Bucket,Interval-Seconds}
	famIETFTrio                      // RateLimit-* other than RateLimit-Policy
	famBetaTrio                      // Beta-RateLimit-* other than Beta-RateLimit-Policy
)

const (
	prefixXRL   = "x-ratelimit-"
	prefixAzure = "x-ms-ratelimit-remaining-"
)

// ctx is the state of one Parse call. It lives on the stack.
type ctx struct {
	h          http.Header
	received   time.Time
	retryAfter srl.Opt[time.Duration]

	// The quotas found so far, written straight into the caller's
	// buffer dst (ParseInto's o.Quotas). See add, all, truncate.
	dst, qs []srl.Quota

	fam uint32
	// seen holds the first maxSeen headers of interest that scan met, so
	// that the families read them without hashing their names again;
	// a name not there is looked up in h.
	seen     [maxSeen]seenHeader
	nSeen    int
	overflow bool     // more headers of interest than seen holds
	odd      []string // names of interest not in canonical form (rare: allocated when met)
	dyn      []string // names of interest whose suffix carries meaning (allocated when met)

	base    time.Time
	baseSet bool

	consumed  [5]string // canonical header names the Mapping read
	nConsumed int
	mapIdx    int // index of the Mapping's quota in all(), or -1
	mapWindow time.Duration
}

// scan makes one pass over the header names: it notes which families are
// present, remembers the names whose suffix carries meaning (Kong, Azure),
// and remembers the names of interest that are not in canonical form (set
// by direct map assignment) so that lookups of precomputed canonical names
// can fall back to them. It allocates only when it meets such names.
func (c *ctx) scan() {
	for k, v := range c.h {
		if len(k) < 3 || !interesting[k[0]] {
			continue
		}
		f, id := classifyExact(k)
		exact, dyn := id != idNone, false
		if !exact {
			f, dyn = classify(k)
		}
		if f == 0 {
			continue
		}
		c.fam |= f
		if c.nSeen < maxSeen {
			// Field by field: a whole-struct store goes through a
			// temporary whose copy stalls on store forwarding.
			s := &c.seen[c.nSeen]
			s.name, s.values, s.id = k, v, id
			c.nSeen++
		} else {
			c.overflow = true
		}
		if dyn {
			c.dyn = keepFirst(c.dyn, k, maxDyn)
		}
		if !exact && !isCanonical(k) {
			c.odd = keepFirst(c.odd, k, maxOdd)
		}
	}
	// The map's order is random: names are taken in their own order, so
	// that the quotas come out the same for the same headers.
	if len(c.dyn) > 1 {
		slices.Sort(c.dyn)
	}
	if len(c.odd) > 1 {
		slices.Sort(c.odd)
	}
}

// maxSeen bounds the headers of interest scan remembers; responses rarely
// carry more than a dozen.
const maxSeen = 8

type seenHeader struct {
	name   string
	values []string
	id     uint8 // classifyExact's id, or idNone
}

// exact returns the values of the header classifyExact calls id, and
// whether that settles it: when the scan met every header of interest in
// canonical form, a known name it did not meet is absent. Otherwise the
// caller looks the name up.
func (c *ctx) exact(id uint8) ([]string, bool) {
	if c.overflow || len(c.odd) > 0 || !exactLookups {
		return nil, false
	}
	for i := range c.seen[:c.nSeen] {
		if c.seen[i].id == id {
			return c.seen[i].values, true
		}
	}
	return nil, true
}

// exactLookups is false only in tests that check the lookups by id
// against the lookups by name.
var exactLookups = true

// rawID is raw for the name canon, which classifyExact calls id.
func (c *ctx) rawID(id uint8, canon string) string {
	v, ok := c.exact(id)
	if !ok {
		return c.raw(canon)
	}
	if len(v) > 0 {
		return v[0]
	}
	return ""
}

// getID is get for the name canon, which classifyExact calls id.
func (c *ctx) getID(id uint8, canon string) string {
	if c.isConsumed(canon) {
		return ""
	}
	return c.rawID(id, canon)
}

// linesID is lines for the name canon, which classifyExact calls id.
func (c *ctx) linesID(id uint8, canon string) []string {
	if c.isConsumed(canon) {
		return nil
	}
	if v, ok := c.exact(id); ok {
		return v
	}
	return c.lines(canon)
}

// header returns h[canon]: from the headers scan met when it is there.
func (c *ctx) header(canon string) []string {
	for i := range c.seen[:c.nSeen] {
		// Names of one family often share their length: a byte near
		// the end tells most apart before the whole names are compared.
		if s := &c.seen[i]; len(s.name) == len(canon) && s.name[len(canon)-2] == canon[len(canon)-2] && s.name == canon {
			return s.values
		}
	}
	return c.h[canon]
}

// interesting tells the first bytes classify can match.
var interesting = func() (t [256]bool) {
	for _, c := range "xrbasdXRBASD" {
		t[c] = true
	}
	return t
}()

// The ids of the names classifyExact knows.
const (
	idNone uint8 = iota
	idDate
	idXRLLimit
	idXRLRemaining
	idXRLReset
	idXRLUsed
	idXRLResource
	idRateLimit
	idRateLimitPolicy
	idRetryAfter
)

// keepFirst adds k to list, which holds at most max names: when it is
// full, the names kept are the first in lexical order, whatever order the
// map gives them in.
func keepFirst(list []string, k string, max int) []string {
	if len(list) < max {
		return append(list, k)
	}
	last := 0
	for i := range list {
		if list[i] > list[last] {
			last = i
		}
	}
	if k < list[last] {
		list[last] = k
	}
	return list
}

// classifyExact is classify for the canonical names most responses carry,
// matched whole; it returns the name's family and id (idNone for a name
// it does not know). It spares the common case the case-insensitive
// prefix matching, and the families read those headers by id.
func classifyExact(k string) (uint32, uint8) {
	switch k {
	case "Date":
		return famDate, idDate
	case hXRLLimit:
		return famXRL, idXRLLimit
	case hXRLRemaining:
		return famXRL, idXRLRemaining
	case hXRLReset:
		return famXRL, idXRLReset
	case hXRLUsed:
		return famXRL, idXRLUsed
	case hXRLResource:
		return famXRL, idXRLResource
	case "Ratelimit":
		return famIETF, idRateLimit
	case "Ratelimit-Policy":
		return famIETF, idRateLimitPolicy
	case "Retry-After":
		return famRetry, idRetryAfter
	}
	return 0, idNone
}

// classify returns the family of the header name k (at least 3 bytes long),
// and whether k's suffix carries meaning (so the name itself must be kept).
func classify(k string) (uint32, bool) {
	switch lower(k[0]) {
	case 'x':
		switch {
		case hasPrefixFold(k, prefixXRL):
			return classifyXRL(k[len(prefixXRL):])
		case hasPrefixFold(k, "x-rate-limit-") || equalFold(k, "x-rate-limit"):
			return famXRateL, false
		case equalFold(k, "x-retry-in"):
			return famRetry, false
		case equalFold(k, "x-shopify-shop-api-call-limit"):
			return famShopify, false
		case hasPrefixFold(k, "x-hubspot-ratelimit-"):
			return famHubSpot, false
		case hasPrefixFold(k, prefixAzure) && len(k) > len(prefixAzure):
			return famAzure, true
		}
	case 'r':
		if hasPrefixFold(k, "ratelimit") && (len(k) == 9 || k[9] == '-') {
			if len(k) == 9 || equalFold(k, "ratelimit-policy") {
				return famIETF, false
			}
			return famIETF | famIETFTrio, false
		}
		if equalFold(k, "retry-after") || equalFold(k, "retry-after-ms") {
			return famRetry, false
		}
	case 'b':
		if hasPrefixFold(k, "beta-ratelimit") && (len(k) == 14 || k[14] == '-') {
			if len(k) == 14 || equalFold(k, "beta-ratelimit-policy") {
				return famBeta, false
			}
			return famBeta | famBetaTrio, false
		}
	case 'a':
		if hasPrefixFold(k, "anthropic-ratelimit-") {
			return famAnthropic, false
		}
		if equalFold(k, "age") {
			return famAge, false
		}
	case 's':
		if equalFold(k, "sforce-limit-info") {
			return famSalesforce, false
		}
	case 'd':
		if equalFold(k, "date") {
			return famDate, false
		}
	}
	return 0, false
}

var xrlKinds = [...]string{"limit-", "remaining-", "reset-"}

func classifyXRL(rest string) (uint32, bool) {
	for _, kind := range xrlKinds {
		if !hasPrefixFold(rest, kind) {
			continue
		}
		tail := rest[len(kind):]
		switch {
		case equalFold(tail, "requests") || equalFold(tail, "tokens"):
			return famOpenAI, false
		case kind == "reset-" && equalFold(tail, "after"):
			return famXRL | famXRLExtra, false
		case tail == "":
			return famXRL, false
		}
		return famXRLDyn, true
	}
	switch {
	case equalFold(rest, "retry-after"):
		return famRetry, false
	case hasPrefixFold(rest, "requests-") || hasPrefixFold(rest, "complexity-"):
		return famLinear, false
	case equalFold(rest, "bucket") || equalFold(rest, "interval-seconds"):
		return famXRL | famXRLExtra, false
	}
	return famXRL, false
}

// raw returns the first value of the header with canonical name canon,
// also under a non-canonical key of the same name.
func (c *ctx) raw(canon string) string {
	if v := c.header(canon); len(v) > 0 {
		return v[0]
	}
	for _, k := range c.odd {
		if len(k) == len(canon) && strings.EqualFold(k, canon) {
			if v := c.h[k]; len(v) > 0 {
				return v[0]
			}
		}
	}
	return ""
}

// get is raw for the standard formats: a header the Mapping read is absent.
func (c *ctx) get(canon string) string {
	if c.isConsumed(canon) {
		return ""
	}
	return c.raw(canon)
}

// lines returns every field line of the header canon (RFC 9651 joins them
// with ", "), also under non-canonical keys of the same name.
func (c *ctx) lines(canon string) []string {
	if c.isConsumed(canon) {
		return nil
	}
	v := c.header(canon)
	for _, k := range c.odd {
		if len(k) == len(canon) && strings.EqualFold(k, canon) {
			v = append(v[:len(v):len(v)], c.h[k]...)
		}
	}
	return v
}

func (c *ctx) isConsumed(name string) bool {
	for _, k := range c.consumed[:c.nConsumed] {
		if strings.EqualFold(k, name) {
			return true
		}
	}
	return false
}

// touched reports whether the Mapping read any of the names.
func (c *ctx) touched(names ...string) bool {
	if c.nConsumed == 0 {
		return false
	}
	for _, n := range names {
		if c.isConsumed(n) {
			return true
		}
	}
	return false
}

// cached reports a response served from a cache (Age > 0), whose quota
// fields are stale: the RateLimit drafts say clients should ignore theirs,
// and the same holds for every family.
func (c *ctx) cached() bool {
	n, ok := number(c.raw("Age"))
	return ok && n > 0
}

// dateBase is the instant absolute times are converted against: the Date
// header when valid, else received.
func (c *ctx) dateBase() time.Time {
	if !c.baseSet {
		c.baseSet = true
		c.base = c.received
		if t, ok := serverDate(c.rawID(idDate, "Date"), c.received); ok {
			c.base = t
		}
	}
	return c.base
}

// lastDate is the latest Date header value parsed, with its time. A
// server's Date changes once a second, and servers agree on it within the
// second, so most responses repeat it: they compare instead of parsing.
// Only a later date replaces it (one allocation a second at most), so
// servers whose clocks differ do not take turns replacing it; a date more
// than a day after the response was received is not kept, so one server
// with a wild clock cannot hold it.
var lastDate atomic.Pointer[dateMemo]

type dateMemo struct {
	raw string
	t   time.Time
}

// serverDate parses a Date header value as httpDate does.
func serverDate(raw string, received time.Time) (time.Time, bool) {
	m := lastDate.Load()
	if m != nil && m.raw == raw {
		return m.t, true
	}
	t, ok := httpDate(raw)
	if ok && (m == nil || t.After(m.t)) && t.Before(received.Add(24*time.Hour)) {
		lastDate.CompareAndSwap(m, &dateMemo{raw: strings.Clone(raw), t: t})
	}
	return t, ok
}

func (c *ctx) until(t time.Time) srl.Opt[time.Duration] {
	return srl.Some(clampDur(t.Sub(c.dateBase())))
}

// untilUnix converts a Unix time in seconds.
func (c *ctx) untilUnix(v float64) srl.Opt[time.Duration] {
	b := c.dateBase()
	now := float64(b.Unix()) + float64(b.Nanosecond())/1e9
	return srl.Some(seconds(v - now))
}

// reset reads a reset value written in format f. A value that does not
// read whole is read from its first list member, as limits and remaining
// counts are: a proxy may join duplicate field lines with ", ".
func (c *ctx) reset(v string, f ResetFormat) srl.Opt[time.Duration] {
	r := c.resetValue(v, f)
	if !r.Valid {
		if i := listEnd(v); i < len(v) {
			r = c.resetValue(v[:i], f)
		}
	}
	return r
}

func (c *ctx) resetValue(v string, f ResetFormat) srl.Opt[time.Duration] {
	v = trimOWS(v)
	if v == "" || len(v) > maxValueLen {
		return srl.Opt[time.Duration]{}
	}
	switch f {
	case ResetAuto:
		return c.resetAuto(v)
	case ResetDeltaSeconds, ResetDeltaMillis, ResetEpochSeconds, ResetEpochMillis:
		n, ok := number(v)
		if !ok {
			break
		}
		switch f {
		case ResetDeltaSeconds:
			return srl.Some(seconds(n))
		case ResetDeltaMillis:
			return srl.Some(seconds(n / 1e3))
		case ResetEpochSeconds:
			return c.untilUnix(n)
		default:
			return c.untilUnix(n / 1e3)
		}
	case ResetHTTPDate:
		if t, ok := httpDate(v); ok {
			return c.until(t)
		}
	case ResetRFC3339:
		if t, ok := isoTime(v); ok {
			return c.until(t)
		}
	case ResetDuration:
		if d, ok := goDuration(v); ok {
			return srl.Some(d)
		}
	}
	return srl.Opt[time.Duration]{}
}

// resetAuto guesses the format of a reset value; see [ResetAuto].
func (c *ctx) resetAuto(v string) srl.Opt[time.Duration] {
	if n, ok := number(v); ok {
		switch {
		case n > 1e12:
			return c.untilUnix(n / 1e3)
		case n > 1e9:
			return c.untilUnix(n)
		}
		return srl.Some(seconds(n))
	}
	if t, ok := httpDate(v); ok {
		return c.until(t)
	}
	if t, ok := isoTime(v); ok {
		return c.until(t)
	}
	if d, ok := goDuration(v); ok {
		return srl.Some(d)
	}
	return srl.Opt[time.Duration]{}
}

// resetPrefer reads v in the format f a provider documents, and guesses
// when v is not in that format.
func (c *ctx) resetPrefer(v string, f ResetFormat) srl.Opt[time.Duration] {
	if r := c.reset(v, f); r.Valid {
		return r
	}
	return c.reset(v, ResetAuto)
}

// retryValue reads a retry hint: seconds (decimals allowed), an HTTP-date,
// or a Go duration.
func (c *ctx) retryValue(v string) srl.Opt[time.Duration] {
	v = trimOWS(v)
	if v == "" || len(v) > maxValueLen {
		return srl.Opt[time.Duration]{}
	}
	if n, ok := number(v); ok {
		return srl.Some(seconds(n))
	}
	if t, ok := httpDate(v); ok {
		return c.until(t)
	}
	if d, ok := goDuration(v); ok {
		return srl.Some(d)
	}
	return srl.Opt[time.Duration]{}
}

// add appends q when it says anything.
func (c *ctx) add(q srl.Quota) {
	if !q.Limit.Valid && !q.Remaining.Valid && !q.ResetIn.Valid || len(c.qs) >= maxQuotas {
		return
	}
	if c.qs == nil {
		c.qs = make([]srl.Quota, 0, 4)
	}
	c.qs = append(c.qs, q)
}

// all returns the quotas found so far; the slice is valid until the next add.
func (c *ctx) all() []srl.Quota { return c.qs }

func (c *ctx) count() int { return len(c.qs) }

// truncate drops the quotas from index n on.
func (c *ctx) truncate(n int) { c.qs = c.qs[:n] }

// emit adds q, or, when the Mapping read some of q's headers, completes
// the Mapping's quota with it.
func (c *ctx) emit(q srl.Quota, touched bool) {
	if touched && c.mapIdx >= 0 {
		fill(&c.all()[c.mapIdx], &q)
		return
	}
	c.add(q)
}

// emitMain emits the quota the draft-03 style "expiring limit" describes:
// it completes the first quota policy since index from that has the same
// limit and no remaining count yet, else it is emitted on its own.
func (c *ctx) emitMain(q srl.Quota, from int, touched bool) {
	if q.Limit.Valid && !touched {
		qs := c.all()
		for i := from; i < len(qs); i++ {
			p := &qs[i]
			if !p.Remaining.Valid && p.Limit.Valid && p.Limit.Value == q.Limit.Value && !p.ResetIn.Valid {
				*p, q = q, *p
				fill(p, &q)
				return
			}
		}
	}
	c.emit(q, touched)
}

// fill copies into dst what src knows and dst does not.
func fill(dst, src *srl.Quota) {
	if dst.Name == "" {
		dst.Name = src.Name
	}
	if !dst.Limit.Valid {
		dst.Limit = src.Limit
	}
	if !dst.Remaining.Valid {
		dst.Remaining = src.Remaining
	}
	if !dst.ResetIn.Valid {
		dst.ResetIn = src.ResetIn
	}
	if !dst.Window.Valid {
		dst.Window = src.Window
	}
	if dst.PartitionKey == "" {
		dst.PartitionKey = src.PartitionKey
	}
}

// settle derives Limit as Used+Remaining, or Remaining as Limit−Used
// (never below zero), when one is missing.
func settle(q *srl.Quota, used srl.Opt[float64]) {
	if !used.Valid {
		return
	}
	switch {
	case !q.Limit.Valid && q.Remaining.Valid:
		q.Limit = optLimit(used.Value+q.Remaining.Value, true)
	case q.Limit.Valid && !q.Remaining.Valid:
		q.Remaining = optCount(math.Max(q.Limit.Value-used.Value, 0), true)
	}
}

// finish applies the invariants, merges duplicates, appends the quotas to
// dst (off the stack: at most one allocation) and decides Limited.
func (c *ctx) finish(status int) (out []srl.Quota, limited bool) {
	qs := c.all()
	if c.mapIdx >= 0 && !qs[c.mapIdx].Window.Valid && c.mapWindow > 0 {
		qs[c.mapIdx].Window = window(c.mapWindow)
	}
	n := 0
	for i := range qs {
		q := qs[i]
		sanitize(&q)
		if q.Limit.Valid || q.Remaining.Valid || q.ResetIn.Valid {
			qs[n] = q
			n++
		}
	}
	qs = dedupe(qs[:n])
	out = qs
	if len(qs) == 0 {
		out = c.dst // the caller's buffer, nil when it had none
	}

	// A retry hint of zero is no guidance ("retry-after: 0" on every
	// response, Atlassian Data Center): it makes no 403 or 503 a rejection.
	hint := c.retryAfter.Valid && c.retryAfter.Value > 0
	switch status {
	case http.StatusTooManyRequests:
		limited = true
	case http.StatusServiceUnavailable:
		limited = hint
	case http.StatusForbidden:
		limited = hint
		for i := range qs {
			if qs[i].Remaining.Valid && qs[i].Remaining.Value == 0 {
				limited = true
			}
		}
	}
	return out, limited
}

// sanitize enforces the Observation invariants on q, whatever a family
// reader did: a known limit is positive and finite, a known remaining
// count non-negative and finite, durations within [0, MaxWindow], windows
// positive, names and dimensions bounded.
func sanitize(q *srl.Quota) {
	if q.Limit.Valid && !(q.Limit.Value > 0 && q.Limit.Value <= maxCount) {
		q.Limit = srl.Opt[float64]{}
	}
	if q.Remaining.Valid && !(q.Remaining.Value >= 0 && q.Remaining.Value <= maxCount) {
		q.Remaining = srl.Opt[float64]{}
	}
	if q.ResetIn.Valid {
		q.ResetIn.Value = clampDur(q.ResetIn.Value)
	}
	if q.Window.Valid {
		q.Window = window(q.Window.Value)
	}
	if len(q.Dimension) > maxDimLen {
		q.Dimension = ""
	}
	q.Dimension = q.Dimension.OrRequests()
	q.Name = clip(q.Name, maxNameLen)
	q.PartitionKey = clip(q.PartitionKey, maxNameLen)
}

// dedupe merges quotas that two header families report for the same
// thing (express-rate-limit's legacy and draft headers, Kong's per-window
// and RateLimit-* headers): same dimension, limit and remaining count,
// compatible names and windows, different sources. The first one stays,
// completed by the others.
func dedupe(qs []srl.Quota) []srl.Quota {
	for i := 0; i < len(qs); i++ {
		for j := i + 1; j < len(qs); j++ {
			if same(&qs[i], &qs[j]) {
				fill(&qs[i], &qs[j])
				qs = append(qs[:j], qs[j+1:]...)
				j--
			}
		}
	}
	return qs
}

func same(a, b *srl.Quota) bool {
	return a.Source != b.Source && a.Dimension == b.Dimension &&
		a.Limit.Valid && b.Limit.Valid && a.Limit.Value == b.Limit.Value &&
		a.Remaining.Valid && b.Remaining.Valid && a.Remaining.Value == b.Remaining.Value &&
		(a.Name == "" || b.Name == "" || a.Name == b.Name) &&
		(!a.Window.Valid || !b.Window.Valid || a.Window.Value == b.Window.Value)
}

// mapping reads the headers a Mapping names.
func (c *ctx) mapping(m *Mapping) {
	read := func(name string) string {
		if name == "" {
			return ""
		}
		if !isCanonical(name) {
			name = textproto.CanonicalMIMEHeaderKey(name)
		}
		if c.nConsumed < len(c.consumed) {
			c.consumed[c.nConsumed] = name
			c.nConsumed++
		}
		if v := c.h[name]; len(v) > 0 {
			return v[0]
		}
		// A key set by direct map assignment: of several spellings, the
		// first in name order, as for the standard formats (map order is
		// random).
		key, val := "", ""
		for k, v := range c.h {
			if len(v) > 0 && strings.EqualFold(k, name) && (key == "" || k < key) {
				key, val = k, v[0]
			}
		}
		return val
	}
	q := srl.Quota{Name: m.Name, Dimension: m.Dimension, Source: srcMapping}
	if v := read(m.Limit); v != "" {
		q.Limit, q.Window = c.expiring([]string{v}, "", false)
	}
	q.Remaining = optCount(leadNumber(read(m.Remaining)))
	settle(&q, optCount(leadNumber(read(m.Used))))
	q.ResetIn = c.reset(read(m.Reset), m.ResetFormat)
	if r := c.retryValue(read(m.RetryAfter)); r.Valid {
		c.retryAfter = r
	}
	c.mapWindow = m.Window
	if q.Limit.Valid || q.Remaining.Valid || q.ResetIn.Valid {
		c.mapIdx = c.count()
		c.add(q)
	}
}

// retry reads the retry hints, most precise first. A hint of zero is no
// guidance: a later one that says more wins over it (Traefik before v3
// sends "Retry-After: 0" for a 105 ms wait it writes in X-Retry-In).
func (c *ctx) retry() {
	if c.retryAfter.Valid && c.retryAfter.Value > 0 { // from the Mapping
		return
	}
	if n, ok := number(c.get("Retry-After-Ms")); ok && c.hint(srl.Some(seconds(n/1e3))) {
		return
	}
	for _, name := range retryNames {
		if c.hint(c.retryValue(c.get(name))) {
			return
		}
	}
}

// hint takes r as the retry hint when it is known and no hint is yet, or
// when it is above zero; it reports whether the search is over.
func (c *ctx) hint(r srl.Opt[time.Duration]) bool {
	if r.Valid && (r.Value > 0 || !c.retryAfter.Valid) {
		c.retryAfter = r
	}
	return c.retryAfter.Valid && c.retryAfter.Value > 0
}

var retryNames = [...]string{"Retry-After", "X-Retry-In", "X-Ratelimit-Retry-After"}
