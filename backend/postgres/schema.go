package postgres

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// schemaVersion is the version of the table and functions this code
// creates. A new version appends a step to migrations.
const schemaVersion = 9

// versionTable records, per bucket table, the schema version applied.
const versionTable = "smartratelimit_schema_version"

// Advisory lock keys. migrateLock serializes migrations of every schema
// (they are rare and short); sweepClass plus a hash of the table elects
// one process for maintenance.
const (
	migrateLock int64 = 0x534d524c4d494752 // "SMRLMIGR"
	sweepClass  int32 = 0x534d524c         // "SMRL"
)

// Function name suffixes appended to the table name.
const (
	suffixAcquire   = "_acquire"
	suffixAcquireN  = "_acquire_n"
	suffixFrac      = "_frac"
	suffixObserve   = "_observe"
	suffixSetLimits = "_set_limits"
	suffixSweep     = "_sweep"
	suffixCancel    = "_cancel"
	longestSuffix   = len(suffixSetLimits)
)

// nowNS is the database clock in nanoseconds since the Unix epoch
// (clock_timestamp has microsecond resolution; the arithmetic is exact).
const nowNS = `((extract(epoch FROM clock_timestamp()) * 1000000)::bigint * 1000)`

// names holds the sanitized identifiers and statements of one table.
type names struct {
	schema, table string // raw option values
	qSchema       string // sanitized schema
	qTable        string // sanitized schema.table
	qVersion      string // sanitized schema.version table
	qAcquire      string
	qAcquireN     string
	qFrac         string
	qObserve      string
	qSetLimits    string
	qSweep        string
	qCancel       string
	sweepKey      int32  // advisory lock object id for maintenance
	now           string // the clock expression (nowNS; tests replace it)

	acquire, acquireN, observe, setLimits, sweep string
	cancel                                       string
	status, keys, clear, clearAll                string
	version                                      string
}

func newNames(schema, table, now string) *names {
	id := func(parts ...string) string { return pgx.Identifier(parts).Sanitize() }
	n := &names{
		schema:     schema,
		table:      table,
		qSchema:    id(schema),
		qTable:     id(schema, table),
		qVersion:   id(schema, versionTable),
		qAcquire:   id(schema, table+suffixAcquire),
		qAcquireN:  id(schema, table+suffixAcquireN),
		qFrac:      id(schema, table+suffixFrac),
		qObserve:   id(schema, table+suffixObserve),
		qSetLimits: id(schema, table+suffixSetLimits),
		qSweep:     id(schema, table+suffixSweep),
		qCancel:    id(schema, table+suffixCancel),
		now:        now,
	}
	h := fnv.New32a()
	h.Write([]byte(schema))
	h.Write([]byte{0})
	h.Write([]byte(table))
	n.sweepKey = int32(h.Sum32())

	// acquire's row as one composite value, in the order of its OUT
	// columns: ok, code, wait, seq, blocked, l_name, l_dim, l_lim, l_win, at.
	n.acquire = `SELECT ` + n.qAcquire + `($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`
	n.acquireN = `SELECT idx, ok, code, wait, seq, blocked, l_name, l_dim, l_lim, l_win, at FROM ` + n.qAcquireN +
		`($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`
	n.observe = `SELECT ` + n.qObserve + `($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)`
	n.setLimits = `SELECT ` + n.qSetLimits + `($1, $2, $3, $4, $5, $6, $7)`
	n.sweep = `SELECT ` + n.qSweep + `($1, $2, $3, $4)`
	n.cancel = `SELECT ` + n.qCancel + `($1, $2, $3, $4, $5, $6, $7)`
	n.status = `SELECT src, name, dim, lim, win, wstart, wused, wprev, wbits, seq, blocked_until, last_used, ` + now +
		` FROM ` + n.qTable + ` WHERE id = sha256($1)`
	n.keys = `SELECT key FROM ` + n.qTable + ` ORDER BY key`
	n.clear = `DELETE FROM ` + n.qTable + ` WHERE id = sha256($1)`
	n.clearAll = `DELETE FROM ` + n.qTable
	n.version = `SELECT version FROM ` + n.qVersion + ` WHERE tbl = $1`
	return n
}

// dollarQuote quotes body with a dollar tag that does not occur in it
// (identifiers inside may hold any character).
func dollarQuote(body string) string {
	tag := "$srl$"
	for i := 0; strings.Contains(body, tag); i++ {
		tag = fmt.Sprintf("$srl%d$", i)
	}
	return tag + body + tag
}

// ddlV1 returns the statements of schema version 1: the table. (Its
// functions are those of the latest version, created by ddlV3.)
//
// Every bucket lives in one row. The limits of a key are parallel arrays
// (one element per limit): src (0 defaults, 1 learned from headers, 2
// override), name, dim, lim (units per window), win (window, ns) and the
// window state wstart (ns, database clock) and wused. Times are bigint
// nanoseconds of the database clock, so the arithmetic is exactly that of
// smartratelimit.Window.
func (n *names) ddlV1() []string {
	return []string{n.replacer().Replace(tableDDL)}
}

// ddlV2 brought the functions of schema version 2 (Limit.Span, paced
// lagging future windows, blocks keeping handed-out slots, the send time of
// a report, inherited default windows). Their bodies are superseded by
// ddlV3; what remains is dropping the observe function of version 1, whose
// signature differs (CREATE OR REPLACE would add an overload).
func (n *names) ddlV2() []string {
	return []string{n.replacer().Replace(dropObserveV1)}
}

// ddlV3 returns the statements of schema version 3: the functions of the
// latest version. Against version 2: Earliest's search is bounded (a limit
// not even an empty window holds answers cost-exceeds instead of looping),
// a learned limit keeps the longest window reported, a report with a send
// time is never taken for a stale one by its end alone, an inherited
// current window ends with the server's, acquire returns the slot (at) for
// the new cancel function, and maintenance keeps rows whose windows are
// not over. acquire is dropped first (its OUT columns changed; callers of
// version 2 select theirs by name and keep working). Learned limits below
// smartratelimit.MinLimit, which version 3 never learns, are removed.
func (n *names) ddlV3() []string {
	r := n.replacer()
	return append(append([]string{r.Replace(dropAcquireV2)}, n.functions()...), r.Replace(dropTinyLearned))
}

// functions returns the statements creating (or replacing) every function
// of the latest version.
func (n *names) functions() []string {
	r := n.replacer()
	fn := func(head, body string) string {
		return r.Replace(head) + " " + dollarQuote(r.Replace(body))
	}
	return []string{
		fn(fracHead, fracBody),
		fn(acquireHead, lockRow+acquireBody),
		fn(acquireNHead, acquireNBody()),
		fn(observeHead, lockRow+observeBody),
		fn(setLimitsHead, setLimitsBody),
		fn(sweepHead, sweepBody),
		fn(cancelHead, cancelBody),
	}
}

// ddlV4 recreates the functions with the safety margin of Limit.Span
// raised from 10ms to 20ms (plus a thousandth of the window, at most a
// tenth): 10ms proved too little for timer wake-ups of several processes
// on a loaded machine.
func (n *names) ddlV4() []string { return n.functions() }

// ddlV5 recreates the functions with the same arithmetic in fewer
// statements: acquire's common path (no limit waits past tmin) takes its
// windows from Earliest instead of running Take again, and acquire writes
// back only the columns it changed; the per-transaction settings are
// tested once. Signatures and answers are those of version 4.
func (n *names) ddlV5() []string { return n.functions() }

// ddlV6 adds what unaligned windows (defaults, overrides, limits learned
// without a reset) know of the window before theirs, so that their limit
// holds over any interval of a window's length (smartratelimit.Window's
// Prev, Late, Last, PrevLate and PrevLast): wprev (Prev, NaN for an aligned
// window) and wbits (Late | Last<<16 | PrevLate<<32 | PrevLast<<48), one
// element per limit like the other arrays. Existing windows start with no
// tail (0), and the functions are recreated.
func (n *names) ddlV6() []string {
	r := n.replacer()
	return append([]string{r.Replace(addTailColumns)}, n.functions()...)
}

const addTailColumns = `ALTER TABLE {tbl}
	ADD COLUMN IF NOT EXISTS wprev float8[] NOT NULL DEFAULT '{}',
	ADD COLUMN IF NOT EXISTS wbits bigint[] NOT NULL DEFAULT '{}';
UPDATE {tbl} SET wprev = array_fill(0::float8, ARRAY[cardinality(src)]),
	wbits = array_fill(0::bigint, ARRAY[cardinality(src)])
WHERE cardinality(wprev) <> cardinality(src) OR cardinality(wbits) <> cardinality(src)`

// ddlV7 adds acquire_n: the acquires of a batch sharing their defaults
// and costs in one call.
func (n *names) ddlV7() []string { return n.functions() }

// ddlV8 recreates the functions with the fixes of the memory backend
// since version 7 (its arithmetic being the same): a report whose window
// ends before slots already handed out does not move the local window's
// end before them; cancel puts a waiter's windows back as they were
// before its grant, kept in the new columns undo_b and undo_f (NULL: no
// record; see keepUndoSQL); carry never moves a window's start past
// maxStart, and a count beyond float8 leaves a full window; Untake gives
// back at most a limit's worth; sums and quotients that float8 fails to
// carry to infinity or 0 (absurd values from a caller of the Backend API)
// give what Go's arithmetic gives.
func (n *names) ddlV8() []string {
	r := n.replacer()
	return append([]string{r.Replace(addUndoColumns)}, n.functions()...)
}

// ddlV9 recreates the functions with the alignment of the memory backend
// since version 8 (smartratelimit.Window): an aligned window lasts its
// limit's window, not the Span, ends at the latest end a report allows
// (its reset plus a second's slack, and no later than a window after the
// report), and keeps a tail (Prev stored as -1 - units, so negative;
// NaN, as written before, is an aligned window without one) whose units
// of the last Uncertainty and margin count against the next window. A
// report precise enough realigns a window whose end it contradicts.
// Windows aligned before keep their start: their end moves by the Span's
// margin at most, once.
func (n *names) ddlV9() []string { return n.functions() }

// addUndoColumns adds the records of waiters, stored uncompressed: a
// waiter's acquire reads and writes them whole (pglz took 2.5 ms of a
// waiter's acquire behind 1,000 others, against 1 ms uncompressed).
const addUndoColumns = `ALTER TABLE {tbl}
	ADD COLUMN IF NOT EXISTS undo_b bigint[],
	ADD COLUMN IF NOT EXISTS undo_f float8[],
	ALTER COLUMN undo_b SET STORAGE EXTERNAL,
	ALTER COLUMN undo_f SET STORAGE EXTERNAL`

// dropObserveV1 drops the observe function of version 1, whose signature
// differs from the current one (CREATE OR REPLACE would add an overload).
const dropObserveV1 = `DROP FUNCTION IF EXISTS {observe}(bytea, text[], text[], float8[], bigint[],
	float8[], boolean[], bigint[], boolean[], bigint, bigint, boolean, int)`

// dropAcquireV2 drops the acquire function of version 2, whose OUT
// columns differ from the current one (CREATE OR REPLACE cannot change them).
const dropAcquireV2 = `DROP FUNCTION IF EXISTS {acquire}(bytea, text[], text[], float8[], bigint[],
	text[], float8[], bigint, boolean, int)`

// dropTinyLearned removes the learned limits below MinLimit (1e-6) that
// earlier versions stored: version 3 ignores such reports, as the memory
// backend does. Defaults are replaced by the next acquire; overrides stay
// (they answer cost-exceeds, which is safe).
const dropTinyLearned = `UPDATE {tbl} t SET
	src    = ARRAY(SELECT t.src[i]    FROM generate_subscripts(t.src, 1) i WHERE t.src[i] <> 1 OR t.lim[i] >= 1e-6 ORDER BY i),
	name   = ARRAY(SELECT t.name[i]   FROM generate_subscripts(t.src, 1) i WHERE t.src[i] <> 1 OR t.lim[i] >= 1e-6 ORDER BY i),
	dim    = ARRAY(SELECT t.dim[i]    FROM generate_subscripts(t.src, 1) i WHERE t.src[i] <> 1 OR t.lim[i] >= 1e-6 ORDER BY i),
	lim    = ARRAY(SELECT t.lim[i]    FROM generate_subscripts(t.src, 1) i WHERE t.src[i] <> 1 OR t.lim[i] >= 1e-6 ORDER BY i),
	win    = ARRAY(SELECT t.win[i]    FROM generate_subscripts(t.src, 1) i WHERE t.src[i] <> 1 OR t.lim[i] >= 1e-6 ORDER BY i),
	wstart = ARRAY(SELECT t.wstart[i] FROM generate_subscripts(t.src, 1) i WHERE t.src[i] <> 1 OR t.lim[i] >= 1e-6 ORDER BY i),
	wused  = ARRAY(SELECT t.wused[i]  FROM generate_subscripts(t.src, 1) i WHERE t.src[i] <> 1 OR t.lim[i] >= 1e-6 ORDER BY i)
WHERE EXISTS (SELECT 1 FROM generate_subscripts(t.src, 1) i WHERE t.src[i] = 1 AND NOT (t.lim[i] >= 1e-6))`

func unpackBits(i string) string {
	return strings.NewReplacer("{i}", i).Replace(
		"lt := v_wb[{i}] & 65535; ls := (v_wb[{i}] >> 16) & 65535; plt := (v_wb[{i}] >> 32) & 65535; pls := (v_wb[{i}] >> 48) & 65535;")
}

func periodSQL(win string) string {
	return strings.NewReplacer("{win}", win).Replace(
		"wl := {win}; tlag := least(20000000 + wl / 1000, wl / 10); " +
			"IF al THEN w := wl; tfl := wl - least(wl, 2000000000 + wl / 20) - tlag; ELSE w := wl + tlag; tlag := 0; tfl := 0; END IF;")
}

// relimitSQL is smartratelimit's relimitLate of Late q of a window holding
// used units, from the limit v_lim[j] to p_qlim[q] (both positive).
func relimitSQL(q, used string) string {
	return strings.NewReplacer("{q}", q, "{used}", used).Replace(
		"CASE WHEN p_qlim[q] < v_lim[j] THEN {frac}({q}::float8 / 65535 * v_lim[j], p_qlim[q]) " +
			"WHEN NOT ({used} <= 1e300) THEN 65535 " +
			"ELSE {frac}({used} / v_lim[j] - {used} / p_qlim[q] + {q}::float8 / 65535 * v_lim[j] / v_lim[j], 1) END")
}

func shiftTail(k string) string {
	return "IF " + k + " = 1 THEN pv := u; plt := lt; pls := ls; ELSE pv := 0; plt := 0; pls := 0; END IF; " +
		"IF al THEN pv := -1 - pv; END IF;"
}

// fracHead and fracBody make smartratelimit's packFrac a SQL function:
// part/whole in 65535ths, rounded up and clamped; NaN (an infinite count
// less an infinite one) is 0, as in Go (PostgreSQL orders NaN above every
// number), and a quotient beyond float8 (which fails where Go gets 0 or
// infinity: absurd counts) is what Go makes of it (part > 2^-1075 whole:
// part * 2^1000 > whole * 2^-75, both exact). Being one IMMUTABLE SELECT,
// the planner inlines it into the expressions that call it.
const fracHead = `CREATE OR REPLACE FUNCTION {frac}(part float8, whole float8) RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS`

const fracBody = `
	SELECT CASE WHEN NOT (part > 0 AND part <> 'NaN'::float8 AND whole > 0) THEN 0
	            WHEN part < whole * 1e-290 THEN  -- 1 unless part / whole is 0 in float8, which fails
	                 CASE WHEN part * '1.0715086071862673e301'::float8 > whole * '2.6469779601696886e-23'::float8 THEN 1 ELSE 0 END
	            WHEN whole >= 1 THEN CASE WHEN part / whole > 1e290 THEN 65535 ELSE least(ceil(part / whole * 65535), 65535)::bigint END
	            WHEN part > whole * 1e290 THEN 65535
	            ELSE least(ceil(part / whole * 65535), 65535)::bigint END`

func (n *names) replacer() *strings.Replacer {
	base := []string{
		"{tbl}", n.qTable,
		"{acquire}", n.qAcquire,
		"{acquire_n}", n.qAcquireN,
		"{frac}", n.qFrac,
		// Fragments of the window arithmetic the functions share. A
		// window's tail fields: Late, Last, PrevLate and PrevLast, 16 bits
		// each in wbits.
		"{unpack_i}", unpackBits("i"),
		"{unpack_j}", unpackBits("j"),
		"{bits}", "lt | (ls << 16) | (plt << 32) | (pls << 48)",
		// Window.shift by k windows: the window left becomes the tail
		// (the one just before), or none.
		"{shift_kk}", shiftTail("kk"),
		"{shift_k}", shiftTail("k"),
		"{observe}", n.qObserve,
		"{set_limits}", n.qSetLimits,
		"{sweep}", n.qSweep,
		"{cancel}", n.qCancel,
		"{now}", n.now,
		"{max_undo}", strconv.Itoa(maxUndo),
		"{forgettable_s}", forgettableSQL("s"),
		"{forgettable_t}", forgettableSQL("t"),
		"{max_start}", strconv.FormatInt(maxStart, 10),
		// A window's alignment (smartratelimit.Window.Aligned: Prev
		// negative, or NaN as written before version 9) and the units of
		// its window before (Prev, stored as -1 - units when aligned).
		"{aligned}", "(pv < 0 OR pv = 'NaN'::float8)",
		// Window.Period of limit i (w), its Limit.Window (wl), and the lag
		// and floor of the tail its window sees (tailOf): an aligned
		// window lasts its Limit.Window and counts the units of the window
		// before only after Window - Uncertainty - lag of it, for a window
		// and the lag (the Span's margin); an unaligned one lasts the Span.
		"{period_i}", periodSQL("v_win[i]"),
		// serverEnd of report q, for a limit of window wl: slo and shi,
		// and whether they may align a window (pr).
		"{server_end}", serverEndSQL,
		"{period_j}", periodSQL("v_win[j]"),
		"{prev_units}", "(CASE WHEN pv = 'NaN'::float8 THEN 0 WHEN pv < 0 THEN -1 - pv ELSE pv END)",
		"{fmax}", "'1.7976931348623157e308'::float8",
	}
	// Sums that float8 fails to carry to infinity (a count far beyond the
	// limit, a limit near the largest float8) are written as CASE
	// WHEN b > {fmax} - a THEN 'Infinity' ELSE a + b END: the same sum
	// otherwise. {grid} is u + Late's units, a window's grid end.
	base = append(base, "{grid}", strings.NewReplacer(base...).Replace(
		"(CASE WHEN lt::float8 / 65535 * lm > {fmax} - u THEN 'Infinity'::float8 ELSE u + lt::float8 / 65535 * lm END)"))
	// Larger fragments, made of the ones above.
	r := strings.NewReplacer(base...)
	carry := strings.NewReplacer("{carry}", carrySQL)
	return strings.NewReplacer(append(base,
		"{carry}", r.Replace(carrySQL),
		"{realign}", r.Replace(strings.Replace(realignSQL, "{tail_count}", tailCountSQL, 1)),
		// relimitLate of Late and PrevLate from v_lim[j] to p_qlim[q].
		"{relimit_lt}", r.Replace(relimitSQL("lt", "u")),
		"{relimit_plt}", r.Replace(relimitSQL("plt", "{prev_units}")),
		"{take_v_t}", r.Replace(carry.Replace(takeSQL("v_t", "v_now"))),
		"{take_g_at}", r.Replace(carry.Replace(takeSQL("g_at", "g_now"))),
		"{keep_undo}", r.Replace(keepUndoSQL),
	)...)
}

// takeSQL returns smartratelimit.Window.Take at instant at of a grant
// made at instant now (SQL expressions), on the window in st, u, pv, al,
// lt, ls, plt and pls, for limit lm, period w and cost c.
func takeSQL(at, now string) string {
	return strings.NewReplacer("{at}", at, "{tnow}", now).Replace(`
		IF {at} >= st + w THEN
			kk := ({at} - st) / w;
			{shift_kk}
			lt := 0; ls := 0;
			st := st + kk * w;
			u := 0;
		END IF;
		g := {grid};
		IF st > {tnow} AND {at} > st THEN
			u := greatest(u, ({at} - st)::float8 / w::float8 * lm);
		END IF;
		u := CASE WHEN c > {fmax} - u THEN 'Infinity'::float8 ELSE u + c END;
		g := greatest(g, ({at} - st)::float8 / w::float8 * lm);
		g := CASE WHEN c > {fmax} - g THEN 'Infinity'::float8 ELSE g + c END;
		lt := {frac}(g - u, lm);
		ls := greatest(ls, {frac}(({at} - st)::float8, w::float8));
		{carry}`)
}

// serverEndSQL is smartratelimit's serverEnd of report q at v_now for a
// limit of window wl: the server counted the request between its send
// time (v_now when unknown) and v_now, in a window ending after that,
// within a window of it and its reset (rounded by up to a second) later.
const serverEndSQL = `
				e := CASE WHEN v_sent > 0 AND v_sent < v_now THEN v_sent ELSE v_now END;
				shi := least(v_now + p_qreset[q] + 1000000000, v_now + wl);
				slo := greatest(e + p_qreset[q] - 1000000000, e);
				pr := slo <= shi AND shi - slo <= least(wl, 2000000000 + wl / 20);`

// realignSQL is smartratelimit.Window's realign at v_now to the end shi,
// on the window in st, u, pv, al, lt, ls, plt, pls of limit j (period w,
// tail lag tlag and floor tfl): the units of its window, and those of the
// window before that count against a grant at v_now, stay counted in the
// aligned window of that end (or before it on its phase) holding v_now,
// as granted at v_now.
const realignSQL = `
					{tail_count}
					u := CASE WHEN k > {fmax} - u THEN 'Infinity'::float8 ELSE u + k END;
					-- Its units went by now, or by its latest grant if later.
					e := greatest(v_now, st + ceil(ls::float8 / 65535 * w::float8)::bigint);
					st := shi - wl;
					IF st > v_now THEN
						st := st - ((st - v_now - 1) / wl + 1) * wl;
					END IF;
					al := true; pv := -1; lt := 0; ls := 0; plt := 0; pls := 0;
					IF u > 0 THEN
						o := least(greatest(e - st, 0), wl)::float8;
						lt := {frac}(o / wl::float8 * lm, lm);
						ls := {frac}(o, wl::float8);
					END IF;
					{period_j}`

// tailCountSQL sets k to the units of the window before that count
// against a grant at v_now (tailOf(0).count) in the window in st, pv, plt,
// pls of limit lm (period w, tail lag tlag and floor tfl); 0 when none.
const tailCountSQL = `
					k := 0;
					tu := {prev_units};
					IF tu > 0 AND st <= v_now THEN
						kk := greatest(v_now - st - tlag, tfl);
						IF kk < ceil(pls::float8 / 65535 * w::float8)::bigint THEN
							k := greatest(0, least(tu, ceil(CASE WHEN plt::float8 / 65535 * lm > {fmax} - tu THEN 'Infinity'::float8
							                                  ELSE tu + plt::float8 / 65535 * lm END
							                             - kk::float8 / w::float8 * lm) - 1));
						END IF;
					END IF;`

// carrySQL is smartratelimit.Window's carry on the window in st, u, pv,
// al, lt, ls, plt and pls, for limit lm and period w: units beyond the limit
// move into the following windows, which then count as full; never past
// maxStart, and an infinite count less an infinite carry is a full window.
const carrySQL = `
		IF lm > 0 AND u > lm + 1e-9 THEN
			-- (u - lm) / lm may exceed float8: 2^20 windows at most.
			k := least(CASE WHEN (u - lm) / 1048576 > lm THEN 1048576 ELSE ceil((u - lm) / lm) END,
			           (({max_start} - st) / w)::float8);
			IF k >= 1 THEN
				{shift_k}
				lt := 0; ls := 0;
				st := st + k::bigint * w;
				IF u = 'Infinity'::float8 AND lm > {fmax} / k THEN
					-- An infinite count less an infinite carry: full (float8
					-- fails on k * lm's overflow, where Go gets NaN).
					u := lm;
				ELSE
					u := u - k * lm;
				END IF;
			END IF;
		END IF;`

// maxStart bounds where carry moves a window's start (smartratelimit's
// maxStart on the backend's own time line): the database clock counts
// from the Unix epoch, already near 1.8e18 ns, so the bound is half the
// int64 range (the year 2116), not a quarter (2043), leaving room for the
// arithmetic after it. A count far beyond the limit on a long window made
// the start overflow bigint, and the report failed.
const maxStart = math.MaxInt64 / 2

// maxUndo bounds the grants whose windows a key keeps for cancel, as the
// memory backend's maxUndo does.
const maxUndo = 1024

// keepUndoSQL is the memory backend's keepUndo: before the grant of a
// waiter (a slot after now), the key's windows as they are (v_ws, v_wu,
// v_wp, v_wb) are appended to its records in undo_b and undo_f, read into
// ub and uf, so that cancel can put them back. undo_b holds the number n
// of windows per grant, then per grant (oldest first) its seq, the
// instant of its acquire, its slot, the key's latest slot before it, and
// n starts and n tail bits; undo_f holds per grant n counts and n Prev.
// The records start over when the limits changed or a grant was made
// without a record since the latest (one that did not wait, or given back
// by Untake); those whose slot has come are dropped, and the oldest beyond
// maxUndo.
const keepUndoSQL = `
		SELECT t.undo_b, t.undo_f INTO ub, uf FROM {tbl} t WHERE t.id = v_id;
		sb := 4 + 2 * n;  -- bigints per record
		uk := 0;          -- records
		IF ub[1] = n THEN
			uk := (cardinality(ub) - 1) / sb;
			IF uk > 0 AND ub[(uk - 1) * sb + 2] IS DISTINCT FROM v_seq THEN
				uk := 0;
			END IF;
		END IF;
		j := 0;           -- records dropped
		WHILE j < uk AND (ub[j * sb + 4] <= v_now OR uk - j >= {max_undo}) LOOP
			j := j + 1;
		END LOOP;
		ub := ARRAY[n::bigint] || ub[j * sb + 2 : uk * sb + 1] || ARRAY[v_seq + 1, v_now, v_t, v_last] || v_ws || v_wb;
		uf := uf[j * 2 * n + 1 : uk * 2 * n] || v_wu || v_wp;`

// The primary key is the only index, so updates stay HOT; fillfactor leaves
// room on each page for the new row versions, and autovacuum runs early.
const tableDDL = `CREATE TABLE IF NOT EXISTS {tbl} (
	id            bytea    PRIMARY KEY,
	key           bytea    NOT NULL,
	src           smallint[] NOT NULL DEFAULT '{}',
	name          text[]   NOT NULL DEFAULT '{}',
	dim           text[]   NOT NULL DEFAULT '{}',
	lim           float8[] NOT NULL DEFAULT '{}',
	win           bigint[] NOT NULL DEFAULT '{}',
	wstart        bigint[] NOT NULL DEFAULT '{}',
	wused         float8[] NOT NULL DEFAULT '{}',
	seq           bigint   NOT NULL DEFAULT 0,
	blocked_until bigint   NOT NULL DEFAULT 0,
	last_slot     bigint   NOT NULL DEFAULT 0,
	created       bigint   NOT NULL,
	last_used     bigint   NOT NULL
) WITH (
	fillfactor = 50,
	autovacuum_vacuum_scale_factor = 0,
	autovacuum_vacuum_threshold = 1000,
	autovacuum_vacuum_insert_scale_factor = 0,
	autovacuum_vacuum_insert_threshold = 1000,
	autovacuum_analyze_scale_factor = 0.05,
	autovacuum_vacuum_cost_delay = 0
)`

// lockRow declares the row variables and locks the key's row, creating it
// when missing; v_now is read after the lock so that every holder of the
// row sees a later clock than the previous one.
const lockRow = `
DECLARE
	v_id      bytea := sha256(p_key);
	v_src     smallint[];
	v_name    text[];
	v_dim     text[];
	v_lim     float8[];
	v_win     bigint[];
	v_ws      bigint[];
	v_wu      float8[];
	v_wp      float8[];
	v_wb      bigint[];
	v_seq     bigint;
	v_blocked bigint;
	v_last    bigint;
	v_now     bigint;
	v_sent    bigint;
	v_inherit boolean;
	v_limits  boolean;  -- acquire replaced the limits (NULL: it did not)
	v_t       bigint;
	n  int;
	m  int;
	i  int;
	j  int;
	q  int;
	c  float8;
	lm float8;
	u  float8;
	w  bigint;
	st bigint;
	e  bigint;
	k  float8;
	tol bigint;
	dwin  bigint[];
	ddim  text[];
	dws   bigint[];
	dwu   float8[];
	nsrc  smallint[];
	nname text[];
	ndim  text[];
	nlim  float8[];
	nwin  bigint[];
	nws   bigint[];
	nwu   float8[];
	nwp   float8[];
	nwb   bigint[];
	dwp   float8[];
	dwb   bigint[];
	dlm   float8[];
	-- A window's tail fields (smartratelimit.Window): prev units, whether
	-- aligned, Late, Last, PrevLate, PrevLast; the tail a window sees
	-- (units, late in units, offset of the last); a grid's end.
	pv  float8;
	al  boolean;
	lt  bigint;
	ls  bigint;
	plt bigint;
	pls bigint;
	tu  float8;
	tl  float8;
	tls bigint;
	g   float8;
	o   float8;
	mm  float8;
	kk  bigint;
	sl  bigint;
	fr  boolean;
	hr  boolean;
	hr2 boolean;
	cur boolean;
	-- A limit's window (Limit.Window) beside its period w; the lag and
	-- floor of the tail a window sees (0 unaligned); the bounds of a
	-- server's window end (serverEnd), whether close enough to align.
	wl   bigint;
	tlag bigint;
	tfl  bigint;
	slo  bigint;
	shi  bigint;
	pr   boolean;
	-- A waiter's records for cancel (undo_b, undo_f), bigints per record.
	ub  bigint[];
	uf  float8[];
	sb  int;
	uk  int;
BEGIN
	IF p_relaxed OR p_lock_timeout > 0 THEN
		IF p_relaxed THEN
			PERFORM set_config('synchronous_commit', 'off', true);
		END IF;
		IF p_lock_timeout > 0 THEN
			PERFORM set_config('lock_timeout', p_lock_timeout::text, true);
		END IF;
	END IF;
	LOOP
		SELECT t.src, t.name, t.dim, t.lim, t.win, t.wstart, t.wused, t.wprev, t.wbits, t.seq, t.blocked_until, t.last_slot
		  INTO v_src, v_name, v_dim, v_lim, v_win, v_ws, v_wu, v_wp, v_wb, v_seq, v_blocked, v_last
		  FROM {tbl} t WHERE t.id = v_id FOR NO KEY UPDATE;
		EXIT WHEN FOUND;
		v_now := {now};
		INSERT INTO {tbl} (id, key, created, last_used) VALUES (v_id, p_key, v_now, v_now)
		ON CONFLICT (id) DO NOTHING;
	END LOOP;
	v_now := {now};
	n := cardinality(v_name);
	IF cardinality(v_wp) <> n OR cardinality(v_wb) <> n THEN
		-- Windows of a row written before version 6: no tail.
		v_wp := array_fill(0::float8, ARRAY[n]); v_wb := array_fill(0::bigint, ARRAY[n]);
	END IF;
`

const acquireHead = `CREATE OR REPLACE FUNCTION {acquire}(
	p_key bytea, p_dname text[], p_ddim text[], p_dlim float8[], p_dwin bigint[],
	p_cdim text[], p_camt float8[], p_max_wait bigint, p_relaxed boolean, p_lock_timeout int,
	OUT ok boolean, OUT code int, OUT wait bigint, OUT seq bigint, OUT blocked boolean,
	OUT l_name text, OUT l_dim text, OUT l_lim float8, OUT l_win bigint, OUT at bigint)
LANGUAGE plpgsql AS`

const acquireNHead = `CREATE OR REPLACE FUNCTION {acquire_n}(
	p_keys bytea[], p_dname text[], p_ddim text[], p_dlim float8[], p_dwin bigint[],
	p_cdim text[], p_camt float8[], p_max_wait bigint[], p_relaxed boolean, p_lock_timeout int)
RETURNS TABLE (idx int, ok boolean, code int, wait bigint, seq bigint, blocked boolean,
	l_name text, l_dim text, l_lim float8, l_win bigint, at bigint)
LANGUAGE plpgsql AS`

// acquireNBody is acquire run on each key of p_keys in turn (with its
// max wait), one row per key in their order: the body of acquire where
// its answer is returned, the next key is taken instead. A batch of
// acquires with the same defaults and costs is one call: the server sets
// the function up once.
func acquireNBody() string {
	at := strings.Index(lockRow, "\tLOOP\n\t\tSELECT t.src")
	decl, load := lockRow[:at], lockRow[at:]
	decl = strings.Replace(decl, "v_id      bytea := sha256(p_key);",
		"v_id      bytea;\n\tv_key     bytea;\n\tv_max_wait bigint;\n\tr_i       int;", 1)
	load = strings.ReplaceAll(load, "p_key", "v_key")
	body := strings.TrimSuffix(strings.TrimRight(acquireBody, "\n"), "END")
	body = strings.ReplaceAll(body, "p_max_wait", "v_max_wait")
	body = strings.ReplaceAll(body, "RETURN;", "RETURN NEXT; CONTINUE req;")
	return decl + `	<<req>>
	FOR r_i IN 1..coalesce(cardinality(p_keys), 0) LOOP
	v_key := p_keys[r_i]; v_id := sha256(v_key); v_max_wait := p_max_wait[r_i];
	v_limits := NULL; idx := r_i;
	ok := NULL; code := NULL; wait := NULL; seq := NULL; blocked := NULL;
	l_name := NULL; l_dim := NULL; l_lim := NULL; l_win := NULL; at := NULL;
` + load + body + `	RETURN NEXT;
	END LOOP;
END`
}

// acquireBody follows smartratelimit.Window: Earliest on every limit from
// tmin = max(now, blocked_until, last_slot), then Take at the latest
// answer on every limit, both on each limit's period (Window.Period: win
// for an aligned window, else its Span, win stretched by
// least(20ms + win/1000, win/10)). at is the slot granted (0 when none).
// A cost no window holds (code 1) still records the defaults and the use,
// as the memory backend does.
//
// PL/pgSQL prepares every expression it runs once per transaction, and
// each call is a transaction of its own: the common path (a grant at once:
// no limit waits past tmin, which is now) runs as few statements as it
// can. While every limit answers tmin, Take at tmin leaves each window as
// its Earliest found it plus the cost (which fits, so nothing spills into
// a later window): nws and nwu collect those windows, Take is not run
// again, and the write returns the answer. The row is written back with
// only the columns that changed. A waiter's grant takes the other path,
// which also keeps the windows before it for cancel (keepUndoSQL).
const acquireBody = `
	-- A key with neither learned nor override limits enforces the request's
	-- defaults, keeping the window state of those it already had.
	IF NOT (v_src && '{1,2}'::smallint[]) AND (v_name IS DISTINCT FROM p_dname OR
	    v_dim IS DISTINCT FROM p_ddim OR v_lim IS DISTINCT FROM p_dlim OR v_win IS DISTINCT FROM p_dwin) THEN
		m := coalesce(cardinality(p_dname), 0);
		nws := '{}'; nwu := '{}'; nwp := '{}'; nwb := '{}';
		FOR i IN 1..m LOOP
			nws[i] := v_now; nwu[i] := 0; nwp[i] := 0; nwb[i] := 0;
			FOR j IN 1..n LOOP
				IF v_name[j] = p_dname[i] AND v_dim[j] = p_ddim[i] THEN
					nws[i] := v_ws[j]; nwu[i] := v_wu[j]; nwp[i] := v_wp[j]; nwb[i] := v_wb[j];
					EXIT;
				END IF;
			END LOOP;
		END LOOP;
		v_src := array_fill(0::smallint, ARRAY[m]);
		v_name := p_dname; v_dim := p_ddim; v_lim := p_dlim; v_win := p_dwin;
		v_ws := nws; v_wu := nwu; v_wp := nwp; v_wb := nwb; n := m;
		v_limits := true;
	END IF;

	-- Earliest on every limit. Where a limit's slot is tmin, its window
	-- after Take at tmin is kept in nws..nwb (the common path needs no
	-- second pass).
	e := greatest(v_now, v_blocked, v_last);  -- tmin
	v_t := e;                                 -- t*
	q := 0;                                   -- the limit that decided t*
	nws := v_ws; nwu := v_wu; nwp := v_wp; nwb := v_wb;
	FOR i IN 1..n LOOP
		-- The cost of the request for this limit.
		c := CASE WHEN array_position(p_cdim, v_dim[i]) IS NOT NULL THEN p_camt[array_position(p_cdim, v_dim[i])]
		          WHEN v_dim[i] = 'requests' THEN 1 ELSE 0 END;
		lm := v_lim[i]; pv := v_wp[i]; al := {aligned};
		{period_i}
		IF c > lm + 1e-9 OR w <= 0 OR NOT (lm > 0) THEN
			code := 1;
		ELSE
			st := v_ws[i]; u := v_wu[i];
			{unpack_i}
			-- The tail the window at st sees.
			tu := {prev_units}; tl := plt::float8 / 65535 * lm; tls := ceil(pls::float8 / 65535 * w::float8)::bigint;
			IF e >= st + w THEN
				kk := (e - st) / w;
				IF kk >= 2 THEN
					tu := 0; tl := 0; tls := 0;
				ELSE
					tu := u; tl := lt::float8 / 65535 * lm; tls := ceil(ls::float8 / 65535 * w::float8)::bigint;
				END IF;
				{shift_kk}
				st := st + kk * w; u := 0; lt := 0; ls := 0;
			END IF;
			fr := false;
			LOOP
				g := {grid};  -- the grid's end
				-- A future window counts the slots paced before tmin as spent.
				IF st > v_now AND e > st THEN
					u := greatest(u, (e - st)::float8 / w::float8 * lm);
				END IF;
				IF (CASE WHEN c <= 0 THEN u < lm - 1e-9 WHEN c > {fmax} - u THEN false ELSE u + c <= lm + 1e-9 END) THEN
					sl := e;
					IF st > v_now THEN
						sl := greatest(st + trunc(CASE WHEN u < 1e-290 THEN 0 ELSE u / lm * w::float8 END)::bigint, e);
					END IF;
					-- Wait for the tail to leave room.
					mm := floor(lm - u - c + 1e-9);
					IF tu > 0 AND tu > mm + 1e-9 THEN
						IF mm < 0 THEN
							o := w::float8;
						ELSE
							-- least(ceil((tu + tl - mm - 1) * w / lm), tls), where
							-- float8 fails instead of carrying a huge tail (a
							-- count far beyond the limit) to infinity: tls.
							o := CASE WHEN tl > {fmax} - tu THEN 'Infinity'::float8 ELSE tu + tl END - mm - 1;
							o := CASE WHEN o > {fmax} / w::float8 THEN tls::float8
							          WHEN lm >= 1 THEN least(ceil(o * w::float8 / lm), tls::float8)
							          WHEN o * w::float8 > {fmax} * lm THEN tls::float8
							          ELSE least(ceil(o * w::float8 / lm), tls::float8) END;
							-- An aligned window's tail counts only after its floor,
							-- for a window and the lag.
							o := CASE WHEN o <= tfl THEN 0 ELSE o + tlag END;
						END IF;
						IF o > 0 THEN
							sl := greatest(sl, st + least(o, w::float8)::bigint);
						END IF;
					END IF;
					EXIT WHEN sl < st + w;
				ELSIF fr AND u = 0 AND NOT (tu > 0) THEN
					code := 1;  -- not even an empty window holds it
					EXIT;
				END IF;
				-- The window after: its tail is this one's (none after a
				-- window passed over).
				IF fr THEN
					tu := 0; tl := 0; tls := 0;
				ELSE
					tu := u;
					tl := {frac}(g - u, lm)::float8 / 65535 * lm;
					tls := ceil(ls::float8 / 65535 * w::float8)::bigint;
				END IF;
				st := st + w; u := 0; lt := 0; ls := 0; fr := true;
			END LOOP;
		END IF;
		IF code = 1 THEN
			ok := false; wait := v_t; seq := v_seq; blocked := false; at := 0;
			l_name := v_name[i]; l_dim := v_dim[i]; l_lim := lm; l_win := v_win[i];
			IF v_limits THEN
				UPDATE {tbl} SET src = v_src, name = v_name, dim = v_dim, lim = v_lim, win = v_win,
					wstart = v_ws, wused = v_wu, wprev = v_wp, wbits = v_wb, last_used = v_now
				WHERE id = v_id;
			ELSE
				UPDATE {tbl} SET last_used = v_now WHERE id = v_id;
			END IF;
			RETURN;
		END IF;
		IF sl > v_t THEN
			v_t := sl; q := i;
		ELSIF sl = e THEN
			-- Take at tmin: the window as found, plus the cost.
			g := CASE WHEN c > {fmax} - greatest(g, (e - st)::float8 / w::float8 * lm) THEN 'Infinity'::float8
			          ELSE greatest(g, (e - st)::float8 / w::float8 * lm) + c END;
			lt := {frac}(g - (u + c), lm);
			ls := greatest(ls, {frac}((e - st)::float8, w::float8));
			nws[i] := st; nwu[i] := u + c; nwp[i] := pv; nwb[i] := {bits};
		END IF;
	END LOOP;

	IF q = 0 AND n > 0 AND v_limits IS NULL AND v_t = v_now AND p_max_wait >= 0 THEN
		-- The common path: t* = tmin = now (a waiter's grant keeps a record
		-- for cancel, below), the limits are those of the row, and
		-- Take left the windows in nws and nwu. The answer comes with the
		-- write (one statement instead of one per OUT column).
		UPDATE {tbl} SET wstart = nws, wused = nwu, wprev = nwp, wbits = nwb, seq = v_seq + 1, last_slot = v_t, last_used = v_now
		WHERE id = v_id
		RETURNING true, 0, v_t - v_now, v_seq + 1, v_blocked > v_now AND v_t = v_blocked, '', '', 0::float8, 0::bigint, v_t
		INTO ok, code, wait, seq, blocked, l_name, l_dim, l_lim, l_win, at;
		RETURN;
	END IF;

	code := 0;
	wait := v_t - v_now;
	blocked := q = 0 AND v_blocked > v_now AND v_t = v_blocked;
	IF q > 0 THEN
		l_name := v_name[q]; l_dim := v_dim[q]; l_lim := v_lim[q]; l_win := v_win[q];
	ELSE
		l_name := ''; l_dim := ''; l_lim := 0; l_win := 0;
	END IF;
	IF wait > p_max_wait THEN
		ok := false; seq := v_seq; at := 0;
		RETURN;
	END IF;
	ok := true; seq := v_seq + 1; at := v_t;

	-- A waiter's grant keeps the windows before it, for cancel; any other
	-- grant leaves the records of no use (as the memory backend's, which
	-- start over): they are dropped.
	ub := NULL; uf := NULL;
	IF v_t > v_now THEN
		{keep_undo}
	END IF;

	-- Take at t* on every limit.
	FOR i IN 1..n LOOP
		c := CASE WHEN array_position(p_cdim, v_dim[i]) IS NOT NULL THEN p_camt[array_position(p_cdim, v_dim[i])]
		          WHEN v_dim[i] = 'requests' THEN 1 ELSE 0 END;
		lm := v_lim[i]; pv := v_wp[i]; al := {aligned};
		{period_i}
		st := v_ws[i]; u := v_wu[i];
		{unpack_i}
		{take_v_t}
		v_ws[i] := st; v_wu[i] := u; v_wp[i] := pv; v_wb[i] := {bits};
	END LOOP;

	IF v_limits THEN
		UPDATE {tbl} SET src = v_src, name = v_name, dim = v_dim, lim = v_lim, win = v_win,
			wstart = v_ws, wused = v_wu, wprev = v_wp, wbits = v_wb, seq = v_seq + 1, last_slot = v_t, last_used = v_now,
			undo_b = ub, undo_f = uf
		WHERE id = v_id;
	ELSE
		UPDATE {tbl} SET wstart = v_ws, wused = v_wu, wprev = v_wp, wbits = v_wb,
			seq = v_seq + 1, last_slot = v_t, last_used = v_now, undo_b = ub, undo_f = uf
		WHERE id = v_id;
	END IF;
END`

const observeHead = `CREATE OR REPLACE FUNCTION {observe}(
	p_key bytea, p_qname text[], p_qdim text[], p_qlim float8[], p_qwin bigint[],
	p_qrem float8[], p_qhasrem boolean[], p_qreset bigint[], p_qhasreset boolean[],
	p_block bigint, p_sent_seq bigint, p_sent_ago bigint, p_relaxed boolean, p_lock_timeout int)
RETURNS void LANGUAGE plpgsql AS`

// observeBody merges the quotas into the learned limits and runs
// smartratelimit.Window.Reconcile on each (on its period), then Block on
// every limit. A new learned limit takes over the window of a default of
// the same window and dimension while the defaults are in force (the
// memory backend's inherit; Reconcile aligns it), else starts on the
// server's window (StartWindow).
const observeBody = `
	-- The send time of the reported request (0: unknown).
	-- A request sent before the time line began is dated at its first
	-- instant (1).
	v_sent := 0;
	IF p_sent_ago > 0 THEN
		v_sent := greatest(v_now - p_sent_ago, 1);
	END IF;
	m := coalesce(cardinality(p_qname), 0);
	v_inherit := false;
	IF m > 0 AND v_src && '{0}'::smallint[] THEN
		-- Learned limits replace the defaults; new ones may inherit their windows.
		v_inherit := true;
		dwin := '{}'; ddim := '{}'; dws := '{}'; dwu := '{}'; dwp := '{}'; dwb := '{}'; dlm := '{}';
		nsrc := '{}'; nname := '{}'; ndim := '{}'; nlim := '{}'; nwin := '{}'; nws := '{}'; nwu := '{}';
		nwp := '{}'; nwb := '{}';
		j := 0; q := 0;
		FOR i IN 1..n LOOP
			IF v_src[i] <> 0 THEN
				j := j + 1;
				nsrc[j] := v_src[i]; nname[j] := v_name[i]; ndim[j] := v_dim[i]; nlim[j] := v_lim[i];
				nwin[j] := v_win[i]; nws[j] := v_ws[i]; nwu[j] := v_wu[i]; nwp[j] := v_wp[i]; nwb[j] := v_wb[i];
			ELSE
				q := q + 1;
				dwin[q] := v_win[i]; ddim[q] := v_dim[i]; dws[q] := v_ws[i]; dwu[q] := v_wu[i];
				dwp[q] := v_wp[i]; dwb[q] := v_wb[i]; dlm[q] := v_lim[i];
			END IF;
		END LOOP;
		v_src := nsrc; v_name := nname; v_dim := ndim; v_lim := nlim; v_win := nwin; v_ws := nws; v_wu := nwu;
		v_wp := nwp; v_wb := nwb;
		n := j;
	END IF;

	<<quotas>>
	FOR q IN 1..m LOOP
		j := 0;
		FOR i IN 1..n LOOP
			IF v_src[i] = 1 AND v_name[i] = p_qname[q] AND v_dim[i] = p_qdim[q] THEN
				j := i;
				EXIT;
			END IF;
		END LOOP;
		IF j = 0 THEN
			-- A new learned limit (at most 16, so that a hostile server cannot
			-- grow a row without bound).
			CONTINUE WHEN cardinality(array_positions(v_src, 1::smallint)) >= 16;
			n := n + 1; j := n;
			v_src[j] := 1; v_name[j] := p_qname[q]; v_dim[j] := p_qdim[q];
			i := 0;
			IF v_inherit THEN
				i := coalesce(array_position(dwin, p_qwin[q]), 0);
				WHILE i > 0 AND ddim[i] <> p_qdim[q] LOOP
					i := coalesce(array_position(dwin, p_qwin[q], i + 1), 0);
				END LOOP;
			END IF;
			IF i > 0 THEN
				-- The window of the default, with the slots booked under it
				-- (Reconcile aligns it with the server's when it may).
				v_ws[j] := dws[i]; v_wu[j] := dwu[i]; v_wp[j] := dwp[i]; v_wb[j] := dwb[i]; v_lim[j] := dlm[i];
			ELSE
				-- StartWindow: ending at the latest end the report allows
				-- (aligned), else starting when the request was sent.
				v_ws[j] := CASE WHEN v_sent > 0 AND v_sent < v_now THEN v_sent ELSE v_now END;
				v_wu[j] := 0; v_wp[j] := 0; v_wb[j] := 0;
				wl := p_qwin[q];
				IF p_qhasreset[q] AND wl > 0 THEN
					{server_end}
					IF pr THEN
						v_ws[j] := shi - wl; v_wp[j] := -1;
					END IF;
				END IF;
				-- Window.Pending: the grants after the reported request (sent
				-- since or still to be sent, the latest at v_last), at most a
				-- limit's worth, as granted at the later of now and v_last, in
				-- the window holding it.
				u := 0;
				IF p_qdim[q] = 'requests' AND p_sent_seq > 0 AND v_seq > p_sent_seq THEN
					u := least((v_seq - p_sent_seq)::float8, p_qlim[q]);
				END IF;
				IF u > 0 AND wl > 0 THEN
					pv := v_wp[j]; al := {aligned};
					w := CASE WHEN al THEN wl ELSE wl + least(20000000 + wl / 1000, wl / 10) END;
					st := v_ws[j];
					e := greatest(v_now, v_last);
					IF e >= st + w THEN
						st := st + (e - st) / w * w;
					END IF;
					o := least(greatest(e - st, 0), w)::float8;
					g := greatest(0::float8, o / w::float8 * p_qlim[q]) + u;
					v_ws[j] := st; v_wu[j] := u;
					v_wb[j] := {frac}(g - u, p_qlim[q]) | ({frac}(o, w::float8) << 16);
				END IF;
			END IF;
		END IF;
		-- Window.Relimit: the grids (Late, PrevLate) of a window counted
		-- under another limit (a default's, or the one announced before)
		-- keep their slots where they are.
		IF v_lim[j] > 0 AND p_qlim[q] > 0 AND v_lim[j] <> p_qlim[q] THEN
			u := v_wu[j]; pv := v_wp[j];
			{unpack_j}
			lt := {relimit_lt}; plt := {relimit_plt};
			v_wb[j] := {bits};
		END IF;
		-- A learned limit keeps the longest window reported for it.
		v_lim[j] := p_qlim[q]; v_win[j] := greatest(coalesce(v_win[j], 0), p_qwin[q]);
		lm := p_qlim[q];
		CONTINUE WHEN NOT (lm > 0) OR v_win[j] <= 0;

		-- Reconcile; when it aligns the window with a server window ending
		-- before a slot already handed out, again without the reset: the
		-- units of the slots after that end would count in no window (or
		-- in the excess carried past it, fewer), and the next window would
		-- take the limit on top of them. The report then lowers the count
		-- of the current window, which keeps its phase until those slots
		-- have come.
		hr := p_qhasreset[q];
		LOOP
			st := v_ws[j]; u := v_wu[j]; pv := v_wp[j]; al := {aligned};
			{period_j}
			{unpack_j}
			IF v_now >= st + w THEN
				kk := (v_now - st) / w;
				{shift_kk}
				lt := 0; ls := 0;
				st := st + kk * w;
				u := 0;
			END IF;
			tol := 1000000000 + wl / 20;   -- Tolerance(window)
			pr := false;
			IF hr THEN
				{server_end}
				IF shi < slo AND p_qreset[q] < 0 THEN
					-- The server's window ended before it counted the request: over.
					v_ws[j] := st; v_wu[j] := u; v_wp[j] := pv; v_wb[j] := {bits};
					CONTINUE quotas;
				END IF;
			END IF;
			-- A report of a window after the latest local one, and one whose
			-- bounds hold an aligned window's end (Reconcile's later, current).
			hr2 := hr AND (shi > st + w + tol OR al AND slo > st + w);
			cur := hr AND al AND st + w >= slo AND st + w <= shi + least(wl, 2000000000 + wl / 20);
			IF v_sent > 0 AND v_sent < st - 1000000 AND st <= v_now AND NOT hr2 AND NOT cur THEN
				-- Sent before the current window began: about an earlier window.
				v_ws[j] := st; v_wu[j] := u; v_wp[j] := pv; v_wb[j] := {bits};
				CONTINUE quotas;
			END IF;
			c := NULL;  -- the server's used count, when known
			IF p_qhasrem[q] THEN
				c := greatest(0, lm - p_qrem[q]);
				IF p_qdim[q] = 'requests' AND p_sent_seq > 0 AND v_seq > p_sent_seq THEN
					-- At most the grants of the latest window are in the server's too.
					c := c + least((v_seq - p_sent_seq)::float8, u);
				END IF;
			END IF;
			fr := false;  -- whether the count may lower what is left
			IF NOT hr THEN
				fr := st <= v_now;
			ELSIF hr2 THEN
				-- The server is already in a window after the latest local
				-- one: precise enough, the window ends with it and takes its
				-- count; else the count lowers the local one.
				IF pr THEN
					{realign}
					IF c IS NOT NULL THEN
						u := c;
					END IF;
				ELSE
					fr := st <= v_now;
				END IF;
			ELSIF st > v_now THEN
				-- The latest local window is a future one, holding
				-- reservations the server cannot know of: ignored.
				v_ws[j] := st; v_wu[j] := u; v_wp[j] := pv; v_wb[j] := {bits};
				CONTINUE quotas;
			ELSIF shi >= st + w - tol OR v_sent > 0 OR slo > st + tol THEN
				-- The same window, or the server's ends inside the local one:
				-- a report precise enough aligns an unaligned window, and one
				-- whose end it contradicts.
				IF pr AND NOT cur THEN
					{realign}
				END IF;
				fr := true;
			ELSE
				-- Without the send time, a window ending about when the local
				-- one began is taken for the one before: stale.
				v_ws[j] := st; v_wu[j] := u; v_wp[j] := pv; v_wb[j] := {bits};
				CONTINUE quotas;
			END IF;
			IF fr AND c > u THEN
				IF al THEN
					-- The server counted its units in its window, which ends no
					-- later than the local one: the grid keeps its end.
					lt := {frac}({grid} - c, lm);
				ELSE
					-- The units the server counted beyond the local ones are
					-- taken as granted now.
					g := greatest({grid}, ((v_now - st)::float8 / w::float8) * lm);
					g := CASE WHEN c > {fmax} - g THEN 'Infinity'::float8 ELSE g + c END - u;
					lt := {frac}(g - c, lm);
					ls := greatest(ls, {frac}((v_now - st)::float8, w::float8));
				END IF;
				u := c;
			END IF;
			{carry}
			EXIT WHEN NOT (hr AND v_last > v_now
			               AND v_last >= CASE WHEN st > v_now THEN st - ((st - v_now - 1) / w + 1) * w ELSE st END + w
			               AND (al <> (v_wp[j] < 0 OR v_wp[j] = 'NaN'::float8) OR (st - v_ws[j]) % w <> 0));
			hr := false;
		END LOOP;
		v_ws[j] := st; v_wu[j] := u; v_wp[j] := pv; v_wb[j] := {bits};
	END LOOP;

	IF p_block > 0 THEN
		-- Block: restart at the block's end, unless slots were handed out
		-- at or after it (the latest window then keeps its count).
		e := v_now + p_block;
		v_blocked := greatest(v_blocked, e);
		FOR i IN 1..n LOOP
			IF v_ws[i] < e AND v_last < e THEN
				-- Unaligned: a Retry-After may end before the server's window.
				v_ws[i] := e; v_wu[i] := 0; v_wb[i] := 0; v_wp[i] := 0;
			END IF;
		END LOOP;
	END IF;

	UPDATE {tbl} SET src = v_src, name = v_name, dim = v_dim, lim = v_lim, win = v_win,
		wstart = v_ws, wused = v_wu, wprev = v_wp, wbits = v_wb, blocked_until = v_blocked, last_used = v_now
	WHERE id = v_id;
END`

const setLimitsHead = `CREATE OR REPLACE FUNCTION {set_limits}(
	p_key bytea, p_name text[], p_dim text[], p_lim float8[], p_win bigint[],
	p_relaxed boolean, p_lock_timeout int)
RETURNS void LANGUAGE plpgsql AS`

// setLimitsBody replaces the override limits, keeping the window state of
// an override or default of the same name and dimension, and counts as a
// use of the key (as the memory backend's SetLimits).
const setLimitsBody = `
DECLARE
	v_id   bytea := sha256(p_key);
	v_now  bigint;
	r      record;
	n int; m int; i int; j int;
	nsrc smallint[] := '{}'; nname text[] := '{}'; ndim text[] := '{}'; nlim float8[] := '{}';
	nwin bigint[] := '{}'; nws bigint[] := '{}'; nwu float8[] := '{}';
	nwp float8[] := '{}'; nwb bigint[] := '{}';
BEGIN
	IF p_relaxed THEN
		PERFORM set_config('synchronous_commit', 'off', true);
	END IF;
	IF p_lock_timeout > 0 THEN
		PERFORM set_config('lock_timeout', p_lock_timeout::text, true);
	END IF;
	m := coalesce(cardinality(p_name), 0);
	LOOP
		SELECT t.src, t.name, t.dim, t.lim, t.win, t.wstart, t.wused, t.wprev, t.wbits INTO r
		  FROM {tbl} t WHERE t.id = v_id FOR NO KEY UPDATE;
		EXIT WHEN FOUND;
		IF m = 0 THEN
			RETURN;  -- nothing to remove
		END IF;
		v_now := {now};
		INSERT INTO {tbl} (id, key, created, last_used) VALUES (v_id, p_key, v_now, v_now)
		ON CONFLICT (id) DO NOTHING;
	END LOOP;
	v_now := {now};
	n := cardinality(r.name);
	-- Overrides first, then the learned limits (and the defaults when no
	-- override remains).
	FOR i IN 1..m LOOP
		nsrc[i] := 2; nname[i] := p_name[i]; ndim[i] := p_dim[i]; nlim[i] := p_lim[i]; nwin[i] := p_win[i];
		nws[i] := v_now; nwu[i] := 0; nwp[i] := 0; nwb[i] := 0;
		FOR q IN 1..n LOOP
			IF r.src[q] <> 1 AND r.name[q] = p_name[i] AND r.dim[q] = p_dim[i] THEN
				nws[i] := r.wstart[q]; nwu[i] := r.wused[q];
				nwp[i] := coalesce(r.wprev[q], 0); nwb[i] := coalesce(r.wbits[q], 0);
				EXIT;
			END IF;
		END LOOP;
	END LOOP;
	j := m;
	FOR i IN 1..n LOOP
		IF r.src[i] = 1 OR (r.src[i] = 0 AND m = 0) THEN
			j := j + 1;
			nsrc[j] := r.src[i]; nname[j] := r.name[i]; ndim[j] := r.dim[i]; nlim[j] := r.lim[i];
			nwin[j] := r.win[i]; nws[j] := r.wstart[i]; nwu[j] := r.wused[i];
			nwp[j] := coalesce(r.wprev[i], 0); nwb[j] := coalesce(r.wbits[i], 0);
		END IF;
	END LOOP;
	UPDATE {tbl} SET src = nsrc, name = nname, dim = ndim, lim = nlim, win = nwin, wstart = nws, wused = nwu,
		wprev = nwp, wbits = nwb, last_used = v_now
	WHERE id = v_id;
END`

const sweepHead = `CREATE OR REPLACE FUNCTION {sweep}(p_class int, p_obj int, p_ttl bigint, p_batch int)
RETURNS bigint LANGUAGE plpgsql AS`

// sweepBody deletes idle rows when this caller wins the maintenance lock
// (-1 otherwise): rows forgetting which changes nothing (the memory
// backend's forgettable): not blocked, no slot to come, no override and
// every window over (now >= wstart + its period: Span(win) unaligned, win
// aligned), so an exhausted daily quota outlives an idle hour; also while
// its latest unit is within a period (and, aligned, the Span's margin) of
// now (a bound the memory backend's Idle may lift earlier). The conditions are repeated on the outer
// DELETE so that a row updated meanwhile is checked again in its newest
// version.
const sweepBody = `
DECLARE
	v_now bigint := {now};
	v_n   bigint;
BEGIN
	IF NOT pg_try_advisory_xact_lock(p_class, p_obj) THEN
		RETURN -1;
	END IF;
	DELETE FROM {tbl} t
	WHERE t.id IN (
		SELECT s.id FROM {tbl} s
		WHERE {forgettable_s}
		LIMIT p_batch)
	  AND {forgettable_t};
	GET DIAGNOSTICS v_n = ROW_COUNT;
	RETURN v_n;
END`

// forgettableSQL is the condition of sweepBody on the row of alias r:
// unused for p_ttl, not blocked, no slot to come, no override, and no
// window that still limits (see sweepBody).
func forgettableSQL(r string) string {
	return strings.ReplaceAll(`r.last_used < v_now - p_ttl AND r.blocked_until <= v_now AND r.last_slot <= v_now
		  AND NOT (r.src && '{2}'::smallint[])
		  AND NOT EXISTS (SELECT 1 FROM unnest(r.wstart, r.win, r.wused, r.wprev, r.wbits) AS x(ws, wn, wu, wp, wb)
		                  CROSS JOIN LATERAL (SELECT (coalesce(x.wp, 0) < 0 OR coalesce(x.wp, 0) = 'NaN'::float8) AS al,
		                                             least(20000000 + x.wn / 1000, x.wn / 10) AS mg) y
		                  CROSS JOIN LATERAL (SELECT CASE WHEN y.al THEN x.wn ELSE x.wn + y.mg END AS sp,
		                                             CASE WHEN y.al THEN y.mg ELSE 0 END AS lag) z
		                  WHERE v_now < x.ws + z.sp
		                     OR (x.wu > 0 AND v_now < x.ws + 2 * z.sp
		                         AND v_now - x.ws - z.sp < ceil(((x.wb >> 16) & 65535)::float8 / 65535 * z.sp::float8) + z.lag))`,
		"r.", r+".")
}

const cancelHead = `CREATE OR REPLACE FUNCTION {cancel}(
	p_key bytea, p_seq bigint, p_at bigint, p_cdim text[], p_camt float8[],
	p_relaxed boolean, p_lock_timeout int)
RETURNS boolean LANGUAGE plpgsql AS`

// cancelBody takes back the grant (p_seq, p_at) while it is the key's
// latest (seq and last_slot unchanged since), and returns whether it did.
// A missing row is not created. As the memory backend's Cancel: when the
// latest record of undo_b and undo_f is that grant's and the windows are
// what its Take made of the windows recorded (no update or other limits
// since), they are put back, with the key's latest slot before it, and the
// record is dropped; else the records are dropped and its cost leaves the
// windows (smartratelimit.Window's Untake on every limit), last_slot going
// back to the latest slot still held (LastSlot), or now. Either way seq
// goes back by one.
const cancelBody = `
DECLARE
	v_id   bytea := sha256(p_key);
	v_dim  text[];
	v_lim  float8[];
	v_win  bigint[];
	v_ws   bigint[];
	v_wu   float8[];
	v_wp   float8[];
	v_wb   bigint[];
	v_seq  bigint;
	v_last bigint;
	v_now  bigint;
	v_slot bigint := 0;
	ub bigint[]; uf float8[];
	n int; un int; sb int; uk int; o int; f int;
	g_now bigint; g_at bigint;
	same boolean := false;
	i int; j int;
	c float8; lm float8; u float8; pv float8; g float8; k float8; x float8;
	w bigint; st bigint; kk bigint; lt bigint; ls bigint; plt bigint; pls bigint;
	wl bigint; tlag bigint; tfl bigint;
	al boolean;
BEGIN
	IF p_relaxed THEN
		PERFORM set_config('synchronous_commit', 'off', true);
	END IF;
	IF p_lock_timeout > 0 THEN
		PERFORM set_config('lock_timeout', p_lock_timeout::text, true);
	END IF;
	SELECT t.dim, t.lim, t.win, t.wstart, t.wused, t.wprev, t.wbits, t.seq, t.last_slot, t.undo_b, t.undo_f
	  INTO v_dim, v_lim, v_win, v_ws, v_wu, v_wp, v_wb, v_seq, v_last, ub, uf
	  FROM {tbl} t WHERE t.id = v_id FOR NO KEY UPDATE;
	IF NOT FOUND OR v_seq <> p_seq OR v_last <> p_at THEN
		RETURN false;
	END IF;
	n := coalesce(cardinality(v_lim), 0);
	IF cardinality(v_wp) <> n OR cardinality(v_wb) <> n THEN
		v_wp := array_fill(0::float8, ARRAY[n]);
		v_wb := array_fill(0::bigint, ARRAY[n]);
	END IF;
	v_now := {now};

	-- The grant's record: the latest, of as many windows as the key has.
	un := ub[1];
	IF un = n THEN
		sb := 4 + 2 * n;
		uk := (cardinality(ub) - 1) / sb;
		o := (uk - 1) * sb + 1;  -- the record's fields follow ub[o]
		f := (uk - 1) * 2 * n;   -- and uf[f]
		same := uk > 0 AND ub[o + 1] = p_seq AND ub[o + 3] = p_at;
	END IF;
	IF same THEN
		-- Its windows, taken again: the same as the key's, bit for bit?
		g_now := ub[o + 2]; g_at := ub[o + 3];
		FOR i IN 1..n LOOP
			c := CASE WHEN v_dim[i] = 'requests' THEN 1 ELSE 0 END;
			FOR j IN 1..coalesce(cardinality(p_cdim), 0) LOOP
				IF p_cdim[j] = v_dim[i] THEN c := p_camt[j]; EXIT; END IF;
			END LOOP;
			lm := v_lim[i]; st := ub[o + 4 + i]; u := uf[f + i]; pv := uf[f + n + i];
			al := {aligned};
			{period_i}
			lt := ub[o + 4 + n + i] & 65535; ls := (ub[o + 4 + n + i] >> 16) & 65535;
			plt := (ub[o + 4 + n + i] >> 32) & 65535; pls := (ub[o + 4 + n + i] >> 48) & 65535;
			{take_g_at}
			IF st IS DISTINCT FROM v_ws[i] OR ({bits}) IS DISTINCT FROM v_wb[i]
			   OR float8send(u) IS DISTINCT FROM float8send(v_wu[i]) OR float8send(pv) IS DISTINCT FROM float8send(v_wp[i]) THEN
				same := false;
				EXIT;
			END IF;
		END LOOP;
	END IF;
	IF same THEN
		-- Put back as they were before the grant.
		FOR i IN 1..n LOOP
			v_ws[i] := ub[o + 4 + i]; v_wb[i] := ub[o + 4 + n + i];
			v_wu[i] := uf[f + i]; v_wp[i] := uf[f + n + i];
		END LOOP;
		v_last := ub[o + 4];
		ub := ub[1:o]; uf := uf[1:f];
	ELSE
		ub := NULL; uf := NULL;
		FOR i IN 1..n LOOP
			c := CASE WHEN v_dim[i] = 'requests' THEN 1 ELSE 0 END;
			FOR j IN 1..coalesce(cardinality(p_cdim), 0) LOOP
				IF p_cdim[j] = v_dim[i] THEN c := p_camt[j]; EXIT; END IF;
			END LOOP;
			lm := v_lim[i];
			-- A grant holds at most a limit's worth (else each window rolled
			-- back gives back a limit more, unbounded: a cost of 1e300 ran
			-- until the statement timeout, holding the row).
			st := v_ws[i]; u := v_wu[i] - least(c, lm); pv := v_wp[i];
			al := {aligned};
			{period_i}
			{unpack_i}
			-- Emptying a future window makes the full one before it the latest,
			-- its units where this one's tail said.
			WHILE u < 1e-9 AND st - w > v_now AND lm > 0 LOOP
				st := st - w;
				u := u + lm;
				lt := {frac}(CASE WHEN plt::float8 / 65535 * lm > {fmax} - {prev_units} THEN 'Infinity'::float8
				              ELSE {prev_units} + plt::float8 / 65535 * lm END - u, lm);
				ls := pls; pv := CASE WHEN al THEN -1 ELSE 0 END; plt := 0; pls := 0;
			END LOOP;
			u := greatest(u, 0);
			v_ws[i] := st; v_wu[i] := u; v_wp[i] := pv; v_wb[i] := {bits};
			IF st > v_now AND u >= 1e-9 AND lm > 0 THEN
				-- LastSlot. A slot beyond bigint (a count far beyond the
				-- limit) is later than any handed out, one before it earlier
				-- than now: last_slot takes neither.
				x := CASE WHEN (u - 1) / 1048576 > lm THEN 'Infinity'::float8 ELSE (u - 1) / lm * w::float8 END;
				IF x > 4e18 THEN
					v_slot := greatest(v_slot, v_last);
				ELSIF x > -4e18 THEN
					v_slot := greatest(v_slot, st + trunc(x)::bigint);
				END IF;
			END IF;
		END LOOP;
		v_last := least(v_last, greatest(v_slot, v_now));
	END IF;
	UPDATE {tbl} SET wstart = v_ws, wused = v_wu, wprev = v_wp, wbits = v_wb, seq = v_seq - 1,
		last_slot = v_last, undo_b = ub, undo_f = uf
	WHERE id = v_id;
	RETURN true;
END`

// migrations[i] brings a table from version i to i+1.
var migrations = []func(n *names) []string{
	(*names).ddlV1,
	(*names).ddlV2,
	(*names).ddlV3,
	(*names).ddlV4,
	(*names).ddlV5,
	(*names).ddlV6,
	(*names).ddlV7,
	(*names).ddlV8,
	(*names).ddlV9,
}

// querier is what the schema code needs: a pool, a connection or a transaction.
type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// currentVersion returns the applied version, or 0 when the schema, the
// version table or the row is missing.
func (n *names) currentVersion(ctx context.Context, q querier) (int, error) {
	var v int
	err := q.QueryRow(ctx, n.version, n.table).Scan(&v)
	var pgErr *pgconn.PgError
	switch {
	case err == nil:
		return v, nil
	case errors.Is(err, pgx.ErrNoRows):
		return 0, nil
	case errors.As(err, &pgErr) && (pgErr.Code == "42P01" || pgErr.Code == "3F000"):
		return 0, nil
	}
	return 0, err
}

// beginner starts transactions: a pool or a connection.
type beginner interface {
	querier
	Begin(ctx context.Context) (pgx.Tx, error)
}

// migrate creates or upgrades the schema. Many processes may call it at
// once: the work happens in one transaction holding a transaction-level
// advisory lock, so exactly one of them applies each step.
func (n *names) migrate(ctx context.Context, db beginner) error {
	if v, err := n.currentVersion(ctx, db); err != nil {
		return err
	} else if v >= schemaVersion {
		return nil
	}
	tx, err := db.Begin(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	for _, s := range []string{
		`SET LOCAL lock_timeout = '60s'`,
		`SET LOCAL statement_timeout = '120s'`,
	} {
		if _, err := tx.Exec(ctx, s); err != nil {
			return err
		}
	}
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, migrateLock); err != nil {
		return err
	}
	for _, s := range []string{
		`CREATE SCHEMA IF NOT EXISTS ` + n.qSchema,
		`CREATE TABLE IF NOT EXISTS ` + n.qVersion + ` (
			tbl        text        PRIMARY KEY,
			version    int         NOT NULL,
			migrated   timestamptz NOT NULL DEFAULT clock_timestamp()
		)`,
	} {
		if _, err := tx.Exec(ctx, s); err != nil {
			return err
		}
	}
	v, err := n.currentVersion(ctx, tx)
	if err != nil {
		return err
	}
	if v >= schemaVersion {
		return tx.Commit(ctx) // another process migrated while we waited
	}
	for ; v < schemaVersion; v++ {
		for _, s := range migrations[v](n) {
			if _, err := tx.Exec(ctx, s); err != nil {
				return fmt.Errorf("migrating to version %d: %w", v+1, err)
			}
		}
	}
	if _, err := tx.Exec(ctx, `INSERT INTO `+n.qVersion+` (tbl, version) VALUES ($1, $2)
		ON CONFLICT (tbl) DO UPDATE SET version = excluded.version, migrated = clock_timestamp()`,
		n.table, v); err != nil {
		return err
	}
	return tx.Commit(ctx)
}
