// Package postgres is a [smartratelimit.Backend] that shares every key's
// buckets between processes through one PostgreSQL table.
//
// # What is stored
//
// One row per key, in the table "buckets" of the schema "smartratelimit"
// (see [WithSchema], [WithTable]): the SHA-256 of the key (the primary
// key, and the table's only index, so updates stay HOT), the key itself
// (bytea: any bytes, any length), the key's limits as parallel arrays
// (source, name, dimension, units, window) with each limit's window state
// (start, units used, what it knows of the window before), the grant
// counter seq, blocked_until, the latest slot handed out, the creation and
// last-use times and, while callers wait for their slots, the windows as
// they were before each waiter's grant (at most 1,024 waiters, so that
// [Backend.Cancel] puts them back). Nothing else: no
// request, header, URL, credential or log. Times are bigint nanoseconds of
// the database clock (clock_timestamp()), so no two clients need agree on
// the time: waits are returned as durations and slept on the caller's
// monotonic clock, with no connection or lock held.
//
// The schema is created and migrated by [New] and [NewFromPool] in one
// transaction holding a transaction-level advisory lock, so many processes
// may start at once. A version table (smartratelimit_schema_version) holds
// one row per bucket table.
//
// # One round trip per call
//
// Acquire is one call of a PL/pgSQL function (its plan is cached, and it
// works behind PgBouncer in transaction mode) that locks the key's row,
// runs the arithmetic of [smartratelimit.Window] for every limit on the
// database clock, and writes the row back: reservations are handed out in
// order across processes, paced inside future windows, and never exceed a
// limit. Observe is one call too. Serialization failures and deadlocks are
// retried, and so is a call on a connection that was lost (a server
// restart, pg_terminate_backend). Idle rows (unused for [WithIdleTTL], not
// blocked, holding no reservation and no override, every window over) are
// deleted by one process at a time, elected with pg_try_advisory_xact_lock.
// [Backend.Cancel] takes back a caller's latest reservation in one call too.
//
// # Durability
//
// By default the limiter's transactions run with synchronous_commit = off
// ([WithSynchronousCommit]): a crash of the database server may lose the
// last ~600 ms of grants, letting that many more requests through after the
// restart. Rate-limit state is ephemeral, the table stays crash-safe and
// replicated, and a hot key is no longer capped by the disk's flush rate.
//
// # When the database is unreachable
//
// By default the backend fails open: a local fallback (an in-memory
// backend from backend/memory, or the one given to [WithFallback])
// serves every call, Status reports Degraded, one warning is logged
// ([WithLogger]), and the database is tried again every second; once it
// answers the backend uses it again, without a restart (the fallback's
// state is not copied back). [WithFailClosed] makes calls fail instead with
// errors wrapping [smartratelimit.ErrBackendUnavailable]. Only a lost
// connection or an unreachable server makes the backend fail open — that
// includes a server that does not answer a round trip within the
// statement timeout plus one second (a silent network or a hung server,
// whose statement_timeout cannot fire; see [WithStatementTimeout]; the
// wait for a connection of a busy pool is not part of it), and a
// context that ends during [New] before the server answers: a
// server that answers with an error (a lock_timeout or statement_timeout
// on a contended key, a permission) and a context that ends during a call
// give an error wrapping ErrBackendUnavailable (with the SQLSTATE), so a
// hot key never bypasses the shared limit. Errors and logs
// name the server's host:port, never the DSN's user or password, a
// statement or a key.
package postgres
