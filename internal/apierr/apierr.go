// Package apierr turns errors into HTTP answers with a JSON body, so that
// every clima endpoint refuses the same way.
package apierr

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/clima-dev/clima/events"
)

// Error is an error with the HTTP status it answers.
type Error struct {
	Status  int
	Message string
}

func (e *Error) Error() string { return e.Message }

// New returns an error answered with status.
func New(status int, format string, args ...any) *Error {
	return &Error{Status: status, Message: fmt.Sprintf(format, args...)}
}

// Unavailable wraps a dependency's failure into a 503, the status every
// sender retries (the RabbitmqSource does not retry a 500).
func Unavailable(what string, err error) *Error {
	return &Error{Status: http.StatusServiceUnavailable, Message: what + ": " + err.Error()}
}

// Status is the HTTP status err answers: its own for *Error, 400 for
// invalid input, 413 for a body over the limit, 503 for anything else, so
// that an unexpected failure is retried rather than dropped.
func Status(err error) int {
	var apiErr *Error
	var invalid *events.InvalidError
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &apiErr):
		return apiErr.Status
	case errors.As(err, &invalid):
		return http.StatusBadRequest
	case errors.As(err, &tooLarge):
		return http.StatusRequestEntityTooLarge
	default:
		return http.StatusServiceUnavailable
	}
}

// Write answers err with its status and a JSON body {"error": …}, plus the
// problems of each bad entry when the input was invalid.
func Write(w http.ResponseWriter, err error) int {
	status := Status(err)
	var body any = map[string]string{"error": err.Error()}
	var invalid *events.InvalidError
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &invalid):
		body = invalid
	case errors.As(err, &tooLarge):
		body = map[string]string{"error": fmt.Sprintf("body is larger than %d bytes", tooLarge.Limit)}
	}
	WriteJSON(w, status, body)
	return status
}

// WriteJSON answers status with v as JSON.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
