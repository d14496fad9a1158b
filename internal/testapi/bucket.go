package testapi

// quota is one dimension of the limit (requests or tokens): size units per
// window nanoseconds, counted by a fixed window or a token bucket. Times are
// Unix nanoseconds, passed in so that the arithmetic never reads a clock.
type quota struct {
	size        int64
	window      int64
	tokenBucket bool
}

// meter is the state of one quota for one bucket. Fixed window: start and
// used. Token bucket: level, in units of token*window nanoseconds (one token
// is window units, refill is size units per nanosecond), as of last.
type meter struct {
	seeded bool
	start  int64
	used   int64
	level  int64
	last   int64
}

// floorDiv is a/b rounded toward minus infinity (b > 0).
func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && a < 0 {
		q--
	}
	return q
}

// ceilDiv is a/b rounded toward plus infinity (b > 0).
func ceilDiv(a, b int64) int64 { return -floorDiv(-a, b) }

// windowStart is the start of the epoch-aligned window holding now.
func windowStart(now, window int64) int64 { return floorDiv(now, window) * window }

// advance brings m up to now. A clock that steps backwards never refills.
func (q quota) advance(m *meter, now int64) {
	if q.tokenBucket {
		full := q.size * q.window
		switch {
		case !m.seeded:
			m.level = full
			m.last = now
		case now > m.last:
			if e := now - m.last; e >= q.window {
				m.level = full
			} else {
				m.level = min(full, m.level+e*q.size)
			}
			m.last = now
		}
	} else if ws := windowStart(now, q.window); !m.seeded || ws != m.start {
		m.start, m.used = ws, 0
	}
	m.seeded = true
}

// remaining is how many whole units are left; call advance first.
func (q quota) remaining(m *meter) int64 {
	if q.tokenBucket {
		return m.level / q.window
	}
	return q.size - m.used
}

// take consumes n units; the caller has checked remaining(m) >= n.
func (q quota) take(m *meter, n int64) {
	if q.tokenBucket {
		m.level -= n * q.window
	} else {
		m.used += n
	}
}

// resetIn is the time until the quota is whole again: the end of the window,
// or the instant the bucket is full.
func (q quota) resetIn(m *meter, now int64) int64 {
	if q.tokenBucket {
		return ceilDiv(q.size*q.window-m.level, q.size)
	}
	return m.start + q.window - now
}

// waitFor is the time until n units (n <= size) are available; 0 if they are.
func (q quota) waitFor(m *meter, n, now int64) int64 {
	if q.remaining(m) >= n {
		return 0
	}
	if q.tokenBucket {
		return ceilDiv(n*q.window-m.level, q.size)
	}
	return q.resetIn(m, now)
}
