package headerparse

import (
	"strings"
	"time"

	srl "github.com/smartratelimit/smartratelimit"
)

// Canonical names (textproto.CanonicalMIMEHeaderKey form), so lookups are
// direct map reads.
const (
	hXRLLimit      = "X-Ratelimit-Limit"
	hXRLRemaining  = "X-Ratelimit-Remaining"
	hXRLReset      = "X-Ratelimit-Reset"
	hXRLUsed       = "X-Ratelimit-Used"
	hXRLResetAfter = "X-Ratelimit-Reset-After"
	hXRLResource   = "X-Ratelimit-Resource"
	hXRLBucket     = "X-Ratelimit-Bucket"
	hXRLInterval   = "X-Ratelimit-Interval-Seconds"

	hXRateLimit          = "X-Rate-Limit"
	hXRateLimitLimit     = "X-Rate-Limit-Limit"
	hXRateLimitRemaining = "X-Rate-Limit-Remaining"
	hXRateLimitReset     = "X-Rate-Limit-Reset"
	hXRateLimitDuration  = "X-Rate-Limit-Duration"

	hShopify    = "X-Shopify-Shop-Api-Call-Limit"
	hSalesforce = "Sforce-Limit-Info"

	hGitLabName     = "Ratelimit-Name"
	hGitLabObserved = "Ratelimit-Observed"
	hGitLabResetAt  = "Ratelimit-Resettime"
)

// xRateLimit reads X-RateLimit-{Limit,Remaining,Reset,Used}: GitHub (with
// X-RateLimit-Resource as the quota name), Discord (Reset-After preferred
// over Reset; X-RateLimit-Bucket as partition key), Reddit (Used and a
// float Remaining, no Limit), Envoy (a draft-03 limit list), Atlassian
// Data Center (X-RateLimit-Interval-Seconds) and the many servers that
// send the plain trio.
func (c *ctx) xRateLimit() {
	q := srl.Quota{Dimension: srl.DimRequests, Source: srcXRL}
	from := c.count()
	q.Limit, q.Window = c.expiring(c.linesID(idXRLLimit, hXRLLimit), srcXRL, true)
	q.Remaining = optCount(leadNumber(c.getID(idXRLRemaining, hXRLRemaining)))
	if !q.Limit.Valid || !q.Remaining.Valid { // else used changes nothing
		settle(&q, optCount(number(c.getID(idXRLUsed, hXRLUsed))))
	}
	if c.fam&famXRLExtra != 0 {
		if d, ok := number(c.get(hXRLResetAfter)); ok {
			q.ResetIn = srl.Some(seconds(d))
			q.Source = srcDiscord
		}
		if d, ok := number(c.get(hXRLInterval)); ok && !q.Window.Valid {
			q.Window = window(seconds(d))
		}
		if b := c.get(hXRLBucket); b != "" {
			q.PartitionKey = b
			q.Source = srcDiscord
		}
	}
	if !q.ResetIn.Valid {
		q.ResetIn = c.reset(c.getID(idXRLReset, hXRLReset), ResetAuto)
	}
	if r := trimOWS(c.getID(idXRLResource, hXRLResource)); r != "" {
		q.Name = r
		q.Source = srcGitHub
	}
	c.emitMain(q, from, c.touched(hXRLLimit, hXRLRemaining, hXRLReset, hXRLUsed, hXRLResetAfter))
}

// expiring reads a draft-03 style limit field: "N", or "N, n;w=s, ..."
// (IETF drafts up to -03, Envoy, Docker Hub's "100;w=21600"). It returns
// the expiring limit N with its own window (w on N) and, when policies is
// set, adds each quota policy after it as a quota of its own (limit and
// window, source src).
func (c *ctx) expiring(lines []string, src string, policies bool) (srl.Opt[float64], srl.Opt[time.Duration]) {
	if len(lines) == 0 {
		return srl.Opt[float64]{}, srl.Opt[time.Duration]{}
	}
	if len(lines) == 1 && !hasListSyntax(lines[0]) {
		return optLimit(number(lines[0])), srl.Opt[time.Duration]{}
	}
	var (
		limit srl.Opt[float64]
		win   srl.Opt[time.Duration]
		m     sfMember
		first = true
		from  = c.count()
	)
	it := newSFIter(lines, false)
	for it.next(&m) {
		if !m.val.isNum() {
			continue
		}
		q := srl.Quota{Dimension: srl.DimRequests, Limit: optLimit(m.val.num, true), Source: src}
		for _, p := range m.paramList() {
			switch k, v := p.key, p.val; {
			case k == "w" && v.isNum():
				q.Window = window(seconds(v.num))
			case k == "name" && v.kind == sfStr:
				q.Name = v.str
			}
		}
		if first {
			first = false
			limit, win = q.Limit, q.Window
			continue
		}
		if !policies {
			break
		}
		c.add(q)
	}
	if it.bad {
		c.truncate(from)
		return optLimit(leadNumber(lines[0])), srl.Opt[time.Duration]{}
	}
	return limit, win
}

// openAIDims are OpenAI's x-ratelimit-{limit,remaining,reset}-{requests,tokens}.
var openAIDims = [...]struct {
	name                    string
	dim                     srl.Dimension
	limit, remaining, reset string
}{
	{"requests", srl.DimRequests, "X-Ratelimit-Limit-Requests", "X-Ratelimit-Remaining-Requests", "X-Ratelimit-Reset-Requests"},
	{"tokens", srl.DimTokens, "X-Ratelimit-Limit-Tokens", "X-Ratelimit-Remaining-Tokens", "X-Ratelimit-Reset-Tokens"},
}

// openAI reads OpenAI's headers: Go-duration resets (integer seconds on
// Azure OpenAI), per-minute windows.
func (c *ctx) openAI() {
	for i := range openAIDims {
		d := &openAIDims[i]
		q := srl.Quota{Name: d.name, Dimension: d.dim, Source: srcOpenAI, Window: srl.Some(time.Minute)}
		q.Limit = optLimit(number(c.get(d.limit)))
		q.Remaining = optCount(number(c.get(d.remaining)))
		if v := c.get(d.reset); v != "" {
			q.ResetIn = c.resetPrefer(v, ResetDuration)
		}
		c.emit(q, c.touched(d.limit, d.remaining, d.reset))
	}
}

// kongWindows are the window words of Kong's rate-limiting plugins.
var kongWindows = [...]struct {
	word string
	d    time.Duration
}{
	{"second", time.Second},
	{"minute", time.Minute},
	{"hour", time.Hour},
	{"day", 24 * time.Hour},
	{"month", 31 * 24 * time.Hour}, // calendar months; the longest is the safe guess
	{"year", srl.MaxWindow},
}

// suffixGroup gathers X-RateLimit-{Limit,Remaining,Reset}-<tail> headers with one tail.
type suffixGroup struct {
	tail                    string
	limit, remaining, reset string
	name                    string
	win                     time.Duration
}

// xRateLimitSuffixed reads X-RateLimit-{Limit,Remaining}-<suffix>: Kong's
// per-window headers (-Second … -Year, and -<name>-<Window> from
// response-ratelimiting), and OpenAI's less common per-quota headers
// (x-ratelimit-limit-project-tokens and similar).
func (c *ctx) xRateLimitSuffixed() {
	var groups [maxDyn]suffixGroup
	n := 0
	for _, k := range c.dyn {
		if !hasPrefixFold(k, prefixXRL) || c.isConsumed(k) {
			continue
		}
		rest := k[len(prefixXRL):]
		kind := -1
		for i, p := range xrlKinds {
			if hasPrefixFold(rest, p) {
				kind, rest = i, rest[len(p):]
				break
			}
		}
		if kind < 0 {
			continue
		}
		g := 0
		for g < n && !strings.EqualFold(groups[g].tail, rest) {
			g++
		}
		if g == n {
			groups[n].tail = rest
			n++
		}
		v := ""
		if vs := c.h[k]; len(vs) > 0 {
			v = vs[0]
		}
		switch kind {
		case 0:
			groups[g].limit = v
		case 1:
			groups[g].remaining = v
		default:
			groups[g].reset = v
		}
	}
	for i := range groups[:n] {
		g := &groups[i]
		for _, w := range kongWindows {
			if equalFold(g.tail, w.word) {
				g.name, g.win = w.word, w.d
			} else if hasSuffixFold(g.tail, "-"+w.word) {
				g.win = w.d
			}
		}
		if g.name == "" {
			g.name = toLower(g.tail)
		}
	}
	// Map order is random: sort by window, then name.
	for i := 1; i < n; i++ {
		for j := i; j > 0 && (groups[j].win < groups[j-1].win ||
			groups[j].win == groups[j-1].win && groups[j].name < groups[j-1].name); j-- {
			groups[j], groups[j-1] = groups[j-1], groups[j]
		}
	}
	for i := range groups[:n] {
		g := &groups[i]
		q := srl.Quota{Name: g.name, Dimension: srl.DimRequests}
		q.Limit = optLimit(number(g.limit))
		q.Remaining = optCount(number(g.remaining))
		if g.win > 0 {
			q.Source = srcKong
			q.Window = window(g.win)
			q.ResetIn = c.reset(g.reset, ResetAuto)
		} else {
			q.Source = srcXRL
			if c.fam&famOpenAI != 0 {
				q.Source = srcOpenAI
				q.Window = srl.Some(time.Minute)
			}
			if strings.Contains(g.name, "token") {
				q.Dimension = srl.DimTokens
			}
			q.ResetIn = c.resetPrefer(g.reset, ResetDuration)
		}
		c.add(q)
	}
}

// linearDims are Linear's X-RateLimit-{Requests,Complexity}-{Limit,Remaining,Reset}.
var linearDims = [...]struct {
	name                    string
	dim                     srl.Dimension
	limit, remaining, reset string
}{
	{"requests", srl.DimRequests, "X-Ratelimit-Requests-Limit", "X-Ratelimit-Requests-Remaining", "X-Ratelimit-Requests-Reset"},
	{"complexity", srl.DimPoints, "X-Ratelimit-Complexity-Limit", "X-Ratelimit-Complexity-Remaining", "X-Ratelimit-Complexity-Reset"},
}

// linear reads Linear's request and complexity quotas (epoch-ms resets).
func (c *ctx) linear() {
	for i := range linearDims {
		d := &linearDims[i]
		q := srl.Quota{Name: d.name, Dimension: d.dim, Source: srcLinear}
		q.Limit = optLimit(number(c.get(d.limit)))
		q.Remaining = optCount(number(c.get(d.remaining)))
		q.ResetIn = c.reset(c.get(d.reset), ResetAuto)
		c.emit(q, c.touched(d.limit, d.remaining, d.reset))
	}
}

// xRateLimitDash reads X-Rate-Limit-{Limit,Remaining,Reset}: Okta, X
// (Twitter), tollbooth (float limit, X-Rate-Limit-Duration window), and
// Zendesk's X-Rate-Limit (the limit) with X-Rate-Limit-Remaining.
func (c *ctx) xRateLimitDash() {
	q := srl.Quota{Dimension: srl.DimRequests, Source: srcXRateLimit}
	limit := c.get(hXRateLimitLimit)
	if limit == "" {
		limit = c.get(hXRateLimit) // Zendesk
	}
	q.Limit = optLimit(leadNumber(limit))
	q.Remaining = optCount(leadNumber(c.get(hXRateLimitRemaining)))
	q.ResetIn = c.reset(c.get(hXRateLimitReset), ResetAuto)
	if v := c.get(hXRateLimitDuration); v != "" {
		if n, ok := number(v); ok {
			q.Window = window(seconds(n))
		} else if d, ok := goDuration(v); ok {
			q.Window = window(d)
		}
	}
	c.emit(q, c.touched(hXRateLimit, hXRateLimitLimit, hXRateLimitRemaining, hXRateLimitReset))
}

// ietfNames are the canonical names of one set of RateLimit fields
// (plain, or with a vendor prefix such as Jira's Beta-).
type ietfNames struct {
	rl, policy, limit, remaining, reset string
	src03, src06, src07, src10          string
	gitlab                              bool
	trio                                uint32 // the family bit of the trio fields
}

var (
	ietfStd = ietfNames{
		"Ratelimit", "Ratelimit-Policy", "Ratelimit-Limit", "Ratelimit-Remaining", "Ratelimit-Reset",
		"ietf-draft03", "ietf-draft06", "ietf-draft07", "ietf-draft10", true, famIETFTrio,
	}
	ietfBeta = ietfNames{
		"Beta-Ratelimit", "Beta-Ratelimit-Policy", "Beta-Ratelimit-Limit", "Beta-Ratelimit-Remaining", "Beta-Ratelimit-Reset",
		"beta-ietf-draft03", "beta-ietf-draft06", "beta-ietf-draft07", "beta-ietf-draft10", false, famBetaTrio,
	}
)

// ietf reads the RateLimit fields of every draft generation:
//   - -08 and later: RateLimit-Policy and RateLimit as lists of named
//     items, joined on the name;
//   - -07: the RateLimit dictionary (limit, remaining, reset) with
//     RateLimit-Policy "n;w=s" items;
//   - -04 to -06: RateLimit-Limit, -Remaining, -Reset with RateLimit-Policy;
//   - up to -03: the same trio, policies inside RateLimit-Limit; also
//     GitLab's epoch reset and RateLimit-Name / -Observed / -ResetTime.
//
// Malformed structured fields are ignored whole, as the drafts require.
func (c *ctx) ietf(n *ietfNames) {
	from := c.count()
	var m sfMember

	// RateLimit-Policy.
	legacyPolicy := false
	it := newSFIter(c.lines(n.policy), false)
	for it.next(&m) {
		switch {
		case m.val.kind == sfStr:
			q := srl.Quota{Name: m.val.str, Dimension: srl.DimRequests, Source: n.src10}
			hasQ := false
			for _, p := range m.paramList() {
				switch k, v := p.key, p.val; {
				case k == "q" && v.isNum():
					q.Limit, hasQ = optLimit(v.num, true), true
				case k == "w" && v.isNum():
					q.Window = window(seconds(v.num))
				case k == "qu" && (v.kind == sfStr || v.kind == sfTok):
					q.Dimension = quotaUnit(v.str)
				case k == "pk" && v.kind == sfBytes:
					q.PartitionKey = v.str
				}
			}
			if hasQ { // q is required
				c.add(q)
			}
		case m.val.isNum():
			q := srl.Quota{Dimension: srl.DimRequests, Limit: optLimit(m.val.num, true)}
			if v, ok := m.param("w"); ok && v.isNum() {
				q.Window = window(seconds(v.num))
			}
			legacyPolicy = true
			c.add(q)
		}
	}
	if it.bad {
		c.truncate(from)
		legacyPolicy = false
	}

	// RateLimit: a list of named items (-08+) or a dictionary (-07).
	var main srl.Quota
	main.Dimension = srl.DimRequests
	label := ""
	if rl := c.lines(n.rl); len(rl) > 0 {
		if firstByte(rl) == '"' {
			c.ietfItems(rl, from, n.src10)
		} else {
			d := main
			it := newSFIter(rl, true)
			for it.next(&m) {
				if !m.val.isNum() {
					continue
				}
				switch m.key {
				case "limit":
					d.Limit = optLimit(m.val.num, true)
				case "remaining":
					d.Remaining = optCount(m.val.num, true)
				case "reset":
					if m.val.num >= 0 {
						d.ResetIn = srl.Some(seconds(m.val.num))
					}
				}
			}
			if !it.bad {
				main, label = d, n.src07
			}
		}
	}
	touched := false
	if label == "" {
		label = n.src03
		if legacyPolicy {
			label = n.src06
		}
	}
	if label != n.src07 && c.fam&n.trio != 0 {
		// The field trio of drafts up to -06 (absent fields read as unknown).
		main.Limit, main.Window = c.expiring(c.lines(n.limit), "", true)
		main.Remaining = optCount(leadNumber(c.get(n.remaining)))
		main.ResetIn = c.reset(beforeParams(c.get(n.reset)), ResetAuto)
		touched = c.touched(n.limit, n.remaining, n.reset)
		if n.gitlab {
			name, observed := trimOWS(c.get(hGitLabName)), c.get(hGitLabObserved)
			if name != "" || observed != "" {
				label = srcGitLab
				main.Name = name
				settle(&main, optCount(number(observed)))
				main.Window = srl.Some(time.Minute) // GitLab states its limits per minute
			}
			if !main.ResetIn.Valid {
				main.ResetIn = c.reset(c.get(hGitLabResetAt), ResetHTTPDate)
			}
		}
	}
	main.Source = label
	for i, qs := from, c.all(); i < len(qs); i++ {
		if qs[i].Source == "" {
			qs[i].Source = label
		}
	}
	c.emitMain(main, from, touched)
}

// ietfItems joins draft -08+ RateLimit items ("name";r=…;t=…;pk=…) with
// the policies added since index from, by name; an item without a policy
// becomes a quota of its own. The items are added first and joined once
// the whole field has proved well-formed (a malformed field is ignored).
func (c *ctx) ietfItems(lines []string, from int, src string) {
	items := c.count()
	var m sfMember
	it := newSFIter(lines, false)
	for it.next(&m) {
		if m.val.kind != sfStr {
			continue
		}
		q := srl.Quota{Name: m.val.str, Dimension: srl.DimRequests, Source: src}
		hasR := false
		for _, p := range m.paramList() {
			switch k, v := p.key, p.val; {
			case k == "r" && v.isNum():
				q.Remaining, hasR = optCount(v.num, true), true
			case k == "t" && v.isNum() && v.num >= 0:
				q.ResetIn = srl.Some(seconds(v.num))
			case k == "pk" && v.kind == sfBytes:
				q.PartitionKey = v.str
			}
		}
		if hasR { // r is required
			c.add(q)
		}
	}
	if it.bad {
		c.truncate(items)
		return
	}
	qs := c.all()
	keep := items
	for j := items; j < len(qs); j++ {
		matched := false
		for i := from; i < items; i++ {
			if p := &qs[i]; p.Source == src && p.Name == qs[j].Name && !p.Remaining.Valid {
				fill(p, &qs[j])
				matched = true
				break
			}
		}
		if !matched {
			qs[keep] = qs[j]
			keep++
		}
	}
	c.truncate(keep)
}

func firstByte(lines []string) byte {
	for _, l := range lines {
		if l = trimOWS(l); l != "" {
			return l[0]
		}
	}
	return 0
}

// beforeParams cuts a value at its first ';' or ',' ("30;w=60"), unless
// it begins with a letter: an HTTP-date, whose weekday ends in a comma.
func beforeParams(v string) string {
	if v = trimOWS(v); v != "" && isLetter(v[0]) {
		return v
	}
	if i := strings.IndexAny(v, ";,"); i >= 0 {
		return v[:i]
	}
	return v
}

// quotaUnit maps an IETF quota unit (qu) to a Dimension.
func quotaUnit(u string) srl.Dimension {
	switch u {
	case "requests", "request":
		return srl.DimRequests
	case "content-bytes", "bytes":
		return srl.DimBytes
	case "concurrent-requests":
		return srl.DimConcurrentRequests
	}
	return srl.Dimension(u)
}

// anthropicDims are Anthropic's anthropic-ratelimit-<dim>-{limit,remaining,reset}.
var anthropicDims = [...]struct {
	name                    string
	dim                     srl.Dimension
	limit, remaining, reset string
}{
	{"requests", srl.DimRequests, "Anthropic-Ratelimit-Requests-Limit", "Anthropic-Ratelimit-Requests-Remaining", "Anthropic-Ratelimit-Requests-Reset"},
	{"tokens", srl.DimTokens, "Anthropic-Ratelimit-Tokens-Limit", "Anthropic-Ratelimit-Tokens-Remaining", "Anthropic-Ratelimit-Tokens-Reset"},
	{"input-tokens", srl.DimInputTokens, "Anthropic-Ratelimit-Input-Tokens-Limit", "Anthropic-Ratelimit-Input-Tokens-Remaining", "Anthropic-Ratelimit-Input-Tokens-Reset"},
	{"output-tokens", srl.DimOutputTokens, "Anthropic-Ratelimit-Output-Tokens-Limit", "Anthropic-Ratelimit-Output-Tokens-Remaining", "Anthropic-Ratelimit-Output-Tokens-Reset"},
}

// anthropic reads Anthropic's headers: RFC 3339 resets, per-minute windows.
func (c *ctx) anthropic() {
	for i := range anthropicDims {
		d := &anthropicDims[i]
		q := srl.Quota{Name: d.name, Dimension: d.dim, Source: srcAnthropic, Window: srl.Some(time.Minute)}
		q.Limit = optLimit(number(c.get(d.limit)))
		q.Remaining = optCount(number(c.get(d.remaining)))
		if v := c.get(d.reset); v != "" {
			q.ResetIn = c.resetPrefer(v, ResetRFC3339)
		}
		c.emit(q, c.touched(d.limit, d.remaining, d.reset))
	}
}

// shopify reads X-Shopify-Shop-Api-Call-Limit: "used/limit".
func (c *ctx) shopify() {
	used, limit, ok := ratio(c.get(hShopify))
	if !ok {
		return
	}
	q := srl.Quota{Dimension: srl.DimRequests, Source: srcShopify, Limit: optLimit(limit, true)}
	settle(&q, optCount(used, true))
	c.add(q)
}

// salesforce reads Sforce-Limit-Info: "api-usage=18/5000;
// per-app-api-usage=17/250(appName=x); api-bursts=1/750" (used/limit).
func (c *ctx) salesforce() {
	s := c.get(hSalesforce)
	for n := 0; s != "" && n < maxItems; n++ {
		var entry string
		if i := strings.IndexAny(s, ";,"); i >= 0 {
			entry, s = s[:i], s[i+1:]
		} else {
			entry, s = s, ""
		}
		key, val, ok := strings.Cut(entry, "=")
		key = trimOWS(key)
		if !ok || key == "" {
			continue
		}
		pk := ""
		if i := strings.IndexByte(val, '('); i >= 0 {
			inner := strings.TrimSuffix(trimOWS(val[i+1:]), ")")
			if hasPrefixFold(inner, "appname=") {
				pk = inner[len("appname="):]
			}
			val = val[:i]
		}
		used, limit, ok := ratio(val)
		if !ok {
			continue
		}
		q := srl.Quota{Name: key, Dimension: srl.DimRequests, Source: srcSalesforce, PartitionKey: pk, Limit: optLimit(limit, true)}
		settle(&q, optCount(used, true))
		if equalFold(key, "api-usage") || equalFold(key, "per-app-api-usage") {
			q.Window = srl.Some(24 * time.Hour) // daily usage, rolling 24 hours
		}
		c.add(q)
	}
}

// hubspotQuotas are HubSpot's X-HubSpot-RateLimit-* pairs.
var hubspotQuotas = [...]struct {
	name, limit, remaining string
	win                    time.Duration
}{
	{"interval", "X-Hubspot-Ratelimit-Max", "X-Hubspot-Ratelimit-Remaining", 0},
	{"secondly", "X-Hubspot-Ratelimit-Secondly", "X-Hubspot-Ratelimit-Secondly-Remaining", time.Second},
	{"daily", "X-Hubspot-Ratelimit-Daily", "X-Hubspot-Ratelimit-Daily-Remaining", 24 * time.Hour},
}

// hubspot reads HubSpot's interval (window from
// X-HubSpot-RateLimit-Interval-Milliseconds), secondly and daily quotas.
func (c *ctx) hubspot() {
	for i := range hubspotQuotas {
		d := &hubspotQuotas[i]
		q := srl.Quota{Name: d.name, Dimension: srl.DimRequests, Source: srcHubSpot, Window: window(d.win)}
		q.Limit = optLimit(number(c.get(d.limit)))
		q.Remaining = optCount(number(c.get(d.remaining)))
		if d.win == 0 {
			if ms, ok := number(c.get("X-Hubspot-Ratelimit-Interval-Milliseconds")); ok {
				q.Window = window(seconds(ms / 1e3))
			}
		}
		c.add(q)
	}
}

// azureNames are the usual suffixes of x-ms-ratelimit-remaining-*.
var azureNames = [...]string{
	"subscription-reads", "subscription-writes", "subscription-deletes",
	"tenant-reads", "tenant-writes", "tenant-deletes",
	"subscription-global-reads", "subscription-global-writes",
	"subscription-resource-requests", "subscription-resource-entities-read",
}

// azure reads Azure Resource Manager's x-ms-ratelimit-remaining-* (remaining
// counts only), including the resource form "Name;197,Name2;1297".
func (c *ctx) azure() {
	from := c.count()
	for _, k := range c.dyn {
		if !hasPrefixFold(k, prefixAzure) || c.isConsumed(k) {
			continue
		}
		tail := k[len(prefixAzure):]
		v := ""
		if vs := c.h[k]; len(vs) > 0 {
			v = vs[0]
		}
		if equalFold(tail, "resource") {
			for n := 0; v != "" && n < maxItems; n++ {
				var entry string
				entry, v, _ = strings.Cut(v, ",")
				name, count, ok := strings.Cut(entry, ";")
				if name = trimOWS(name); ok && name != "" {
					c.add(srl.Quota{Name: name, Dimension: srl.DimRequests, Source: srcAzure, Remaining: optCount(number(count))})
				}
			}
			continue
		}
		name := ""
		for _, n := range azureNames {
			if equalFold(tail, n) {
				name = n
				break
			}
		}
		if name == "" {
			name = toLower(tail)
		}
		c.add(srl.Quota{Name: name, Dimension: srl.DimRequests, Source: srcAzure, Remaining: optCount(number(v))})
	}
	// Map order is random: sort by name.
	qs := c.all()[from:]
	for i := 1; i < len(qs); i++ {
		for j := i; j > 0 && qs[j].Name < qs[j-1].Name; j-- {
			qs[j], qs[j-1] = qs[j-1], qs[j]
		}
	}
}
