// Package smartratelimit holds the vocabulary shared by every part of the
// client-side rate limiter: the quotas a server announces ([Quota],
// [Observation]), the limits the limiter enforces ([Limit]), the [Backend]
// interface that stores bucket state, and the errors callers match with
// [errors.Is] and [errors.As] ([ErrRateLimited], [*LimitError],
// [ErrBackendUnavailable]).
//
// The package imports neither resty nor pgx. The pieces around it are:
//
//   - headerparse: pure functions from a response's status and headers to an [Observation].
//   - middleware: attaches a limiter to a resty client in one call.
//   - backend/memory: the embedded, in-process [Backend] (the default).
//   - backend/postgres: a [Backend] shared by every process through PostgreSQL.
//
// # The bucket model
//
// Every [Limit] is enforced as a fixed window of Window length holding at most
// Limit units. A request that finds room in the current window goes at once;
// otherwise it reserves the next free slot of a later window, and slots inside
// a future window are paced evenly (slot j of a window starting at s lands at
// s + j*Window/Limit), so waiters are served first come, first served, never
// all at the same instant and never more than Limit in any window. When a key
// has several limits (for example per second, per minute and per hour), a
// request waits for the latest of their slots and is counted in each of them
// at that instant. [Window] implements this arithmetic for one limit; the
// backends store it.
package smartratelimit
