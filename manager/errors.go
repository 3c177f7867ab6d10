package manager

import "errors"

// Sentinel errors. The manager and the backends in its subpackages wrap them
// with the key that failed; test for them with errors.Is.
var (
	// ErrNotFound is returned for a key that is missing, has expired, or was
	// invalidated through one of its tags. A Backend must return an error
	// that matches it for a missing key.
	ErrNotFound = errors.New("manager: key not found")
	// ErrClosed is returned by every call after Close.
	ErrClosed = errors.New("manager: cache is closed")
	// ErrValueTooLarge is returned by a backend that refuses a value rather
	// than drop it silently.
	ErrValueTooLarge = errors.New("manager: value too large")
	// ErrWrongType is returned when a value is read as a type other than the
	// one it was written as, or does not fit the type asked for.
	ErrWrongType = errors.New("manager: value has another type")
	// ErrCorrupt is returned for a stored value that is not a value the
	// manager wrote, or that fails to decode.
	ErrCorrupt = errors.New("manager: corrupt value")
)

// isNotFound reports whether err means a miss: it matches ErrNotFound, or
// it says so itself through a NotFound method, as engine.ErrNotFound does
// (so a bare *engine.Cache works as a Backend without this package
// importing the engine). The comparison comes first: backends return the
// bare sentinel on the hot miss path.
func isNotFound(err error) bool {
	if err == nil {
		return false
	}
	if err == ErrNotFound || errors.Is(err, ErrNotFound) {
		return true
	}
	var nf interface{ NotFound() bool }
	return errors.As(err, &nf) && nf.NotFound()
}
