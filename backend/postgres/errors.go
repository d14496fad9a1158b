package postgres

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/smartratelimit/smartratelimit"
)

// unavailableError reports that the database could not be reached or
// answered with an error. Its message names the server's address and the
// cause, never the DSN's user or password, a statement or a key.
type unavailableError struct {
	addr string
	err  error
}

func (e *unavailableError) Error() string {
	return smartratelimit.ErrBackendUnavailable.Error() + ": postgres at " + e.addr + ": " + describe(e.err)
}

// Unwrap lets errors.Is match ErrBackendUnavailable and the cause (a
// *pgconn.PgError, a net error, a context error...).
func (e *unavailableError) Unwrap() []error {
	return []error{smartratelimit.ErrBackendUnavailable, e.err}
}

// noAnswerError reports a round trip or a new connection the server did
// not answer within the backend's own bound (see roundTrip): a silent
// network or a hung server, whose statement_timeout cannot fire for a
// statement it never received. The connection is closed; it is handled as
// a lost one.
type noAnswerError struct{ after time.Duration }

func (e noAnswerError) Error() string {
	return "no answer from the server within " + e.after.String()
}

// errDegraded answers the acquires still queued when the backend has
// entered degraded mode: the fallback serves them at once rather than
// after their batch waits for a database found unreachable.
var errDegraded = errors.New("database unreachable (degraded mode)")

// stripConnect removes pgconn.ConnectError, whose Config holds the
// password, keeping what it wraps.
func stripConnect(err error) error {
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) {
		if inner := ce.Unwrap(); inner != nil {
			return inner
		}
		return errors.New("connection failed")
	}
	return err
}

// describe formats err for messages and logs: server errors by message
// and SQLSTATE only (their detail may quote a key), authentication errors
// without the user name.
func describe(err error) string {
	err = stripConnect(err)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		if strings.HasPrefix(pgErr.Code, "28") {
			return "authentication failed (SQLSTATE " + pgErr.Code + ")"
		}
		return pgErr.Message + " (SQLSTATE " + pgErr.Code + ")"
	}
	return err.Error()
}

// sqlState returns the SQLSTATE of a server error, or "".
func sqlState(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code
	}
	return ""
}

// retryableConflict reports a serialization failure or a deadlock: the
// statement can simply run again.
func retryableConflict(err error) bool {
	c := sqlState(err)
	return c == "40001" || c == "40P01"
}

// connectionLost reports an error that ends the connection or means the
// server cannot be reached (network failure, refused connection, server
// shutdown, pg_terminate_backend, too many connections): another
// connection may succeed, and only these may make the backend fail open.
// A server answering with any other error (a lock or statement timeout,
// a permission, bad data) is reachable: the error is returned.
func connectionLost(err error) bool {
	if errors.As(err, new(noAnswerError)) {
		return true
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	c := sqlState(err)
	switch {
	case c == "":
		return true // not a server error: I/O, connect or pool failure
	case strings.HasPrefix(c, "08"), c == "57P01", c == "57P02", c == "57P03":
		return true
	case strings.HasPrefix(c, "53"):
		// Out of connections or memory while connecting.
		var ce *pgconn.ConnectError
		return errors.As(err, &ce)
	}
	return false
}
