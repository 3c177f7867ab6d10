package resp

import "errors"

// Errors a Store returns for Redis's typed errors; the handler answers them
// with Redis's wording.
var (
	// ErrNotInteger: "ERR value is not an integer or out of range".
	ErrNotInteger = errors.New("value is not an integer or out of range")
	// ErrOverflow: "ERR increment or decrement would overflow".
	ErrOverflow = errors.New("increment or decrement would overflow")
)
