package postgres

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/smartratelimit/smartratelimit"
)

// ErrInvalidOption reports an option value New or NewFromPool cannot use.
// It matches smartratelimit.ErrInvalidLimit with errors.Is too.
var ErrInvalidOption = fmt.Errorf("postgres: invalid option: %w", smartratelimit.ErrInvalidLimit)

// Option configures a Backend; pass options to New or NewFromPool.
type Option func(*options) error

// Defaults of the options.
const (
	DefaultSchema           = "smartratelimit"
	DefaultTable            = "buckets"
	DefaultPoolSize         = 4
	DefaultStatementTimeout = 2 * time.Second
	DefaultLockTimeout      = time.Second
	DefaultIdleTTL          = time.Hour
	// ApplicationName is the application_name of the connections of a pool
	// New creates, unless the DSN sets one.
	ApplicationName = "smartratelimit"
)

type options struct {
	schema, table    string
	poolSize         int
	syncCommit       bool
	statementTimeout time.Duration
	stSet            bool // WithStatementTimeout was given
	lockTimeout      time.Duration
	idleTTL          time.Duration
	failClosed       bool
	fallback         smartratelimit.Backend
	logger           *slog.Logger
	now              string // SQL expression of the clock, in ns
}

func defaultOptions() options {
	return options{
		schema:           DefaultSchema,
		table:            DefaultTable,
		poolSize:         DefaultPoolSize,
		statementTimeout: DefaultStatementTimeout,
		lockTimeout:      DefaultLockTimeout,
		idleTTL:          DefaultIdleTTL,
		logger:           slog.Default(),
		now:              nowNS,
	}
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalidOption}, args...)...)
}

// checkIdent rejects identifiers PostgreSQL would truncate or cannot hold.
// Any other character is allowed: identifiers are always quoted.
func checkIdent(what, s string, maxLen int) error {
	switch {
	case s == "":
		return invalid("%s name is empty", what)
	case len(s) > maxLen:
		return invalid("%s name is longer than %d bytes", what, maxLen)
	case strings.IndexByte(s, 0) >= 0 || !utf8.ValidString(s):
		return invalid("%s name holds a NUL byte or invalid UTF-8", what)
	}
	return nil
}

// WithSchema sets the schema holding the table and its functions (default
// "smartratelimit"). It is created when missing. The name is quoted, never
// interpreted; it must be 1 to 63 bytes of UTF-8 without NUL.
func WithSchema(name string) Option {
	return func(o *options) error {
		if err := checkIdent("schema", name, 63); err != nil {
			return err
		}
		o.schema = name
		return nil
	}
}

// WithTable sets the table holding the buckets (default "buckets"). Its
// functions are named after it (buckets_acquire, ...). The name is quoted,
// never interpreted; it must be 1 to 52 bytes of UTF-8 without NUL.
func WithTable(name string) Option {
	return func(o *options) error {
		if err := checkIdent("table", name, 63-longestSuffix); err != nil {
			return err
		}
		if name == versionTable {
			return invalid("table name %q is reserved", name)
		}
		o.table = name
		return nil
	}
}

// WithPoolSize sets the number of connections of the pool New creates
// (default 4; 1 to 1000). A small pool serves many goroutines best. It is
// ignored by NewFromPool.
func WithPoolSize(n int) Option {
	return func(o *options) error {
		if n < 1 || n > 1000 {
			return invalid("pool size %d out of 1..1000", n)
		}
		o.poolSize = n
		return nil
	}
}

// WithSynchronousCommit chooses whether the limiter's writes wait for the
// WAL flush (default false: synchronous_commit = off for its transactions).
//
// Bucket state is ephemeral. With the default, a crash of the database
// server loses at most the last ~600 ms of grants (wal_writer_delay times
// three), which lets a few more requests through after the restart; the
// table stays crash-safe and replicated, and a hot key is no longer capped
// by the disk's flush rate. Pass true to make every grant durable: the
// limiter then leaves synchronous_commit to the server's (or the DSN's, or
// the pool's) setting, on unless configured otherwise.
func WithSynchronousCommit(on bool) Option {
	return func(o *options) error {
		o.syncCommit = on
		return nil
	}
}

// WithStatementTimeout bounds each statement of a pool New creates
// (statement_timeout, default 2s; 0 disables). With NewFromPool the pool's
// own setting and the caller's context apply.
//
// It also bounds each round trip on the client side: a call the server
// has not answered within the statement timeout plus one second (a silent
// network, a hung server: the server never saw the statement, so its
// statement_timeout cannot fire) fails as a lost connection would, served
// by the fallback or failing with smartratelimit.ErrBackendUnavailable.
// That bound is 30s when the timeout is 0, and with NewFromPool unless
// this option is given (the pool's statement_timeout is not known).
func WithStatementTimeout(d time.Duration) Option {
	return func(o *options) error {
		if d < 0 {
			return invalid("statement timeout %v is negative", d)
		}
		o.statementTimeout, o.stSet = d, true
		return nil
	}
}

// WithLockTimeout bounds the wait for a key's row lock (lock_timeout,
// default 1s; 0 disables). It is set for every transaction of the limiter,
// also with NewFromPool.
func WithLockTimeout(d time.Duration) Option {
	return func(o *options) error {
		if d < 0 {
			return invalid("lock timeout %v is negative", d)
		}
		o.lockTimeout = d
		return nil
	}
}

// WithIdleTTL sets how long a key may go unused before maintenance deletes
// its row (default 1h). Rows that are blocked, hold reservations or
// override limits, or have a window that is not over yet (an exhausted
// daily quota), are kept: deleting them would change a decision. Maintenance runs every TTL/2, at least every
// minute and at most every second, in one elected process.
func WithIdleTTL(d time.Duration) Option {
	return func(o *options) error {
		if d <= 0 {
			return invalid("idle TTL %v must be positive", d)
		}
		o.idleTTL = d
		return nil
	}
}

// WithFallback sets the backend that serves every call while the database
// is unreachable (fail open, the default behaviour). The Backend owns it:
// Close closes it. SetLimits, Clear and ClearAll are applied to it too, so
// that it enforces the same overrides when it takes over.
func WithFallback(fallback smartratelimit.Backend) Option {
	return func(o *options) error {
		if fallback == nil {
			return invalid("nil fallback")
		}
		o.fallback = fallback
		return nil
	}
}

// WithFailClosed makes calls fail with an error wrapping
// smartratelimit.ErrBackendUnavailable while the database is unreachable,
// instead of falling back to a local limiter.
func WithFailClosed() Option {
	return func(o *options) error {
		o.failClosed = true
		return nil
	}
}

// WithLogger sets where the backend logs its changes of state: entering
// and leaving degraded mode (default slog.Default(); nil discards). It
// never logs credentials, statements or keys.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) error {
		if l == nil {
			l = slog.New(slog.DiscardHandler)
		}
		o.logger = l
		return nil
	}
}

func buildOptions(opts []Option) (options, error) {
	o := defaultOptions()
	var errs []error
	for _, opt := range opts {
		if opt == nil {
			continue
		}
		if err := opt(&o); err != nil {
			errs = append(errs, err)
		}
	}
	if o.failClosed && o.fallback != nil {
		errs = append(errs, invalid("WithFailClosed and WithFallback exclude each other"))
	}
	return o, errors.Join(errs...)
}
