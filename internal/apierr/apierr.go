// Package apierr turns errors into HTTP answers with a JSON body, so that
// every clima endpoint refuses the same way.
package apierr

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
)

// Error is an error with the HTTP status it answers.
type Error struct {
	Status  int
	Message string
}

func (e *Error) Error() string { return e.Message }

// HTTPStatus is the status e answers.
func (e *Error) HTTPStatus() int { return e.Status }

// StatusError is an error that knows the HTTP status it answers, such as
// *Error or the domain's refusals of bad input. Its JSON encoding is the
// body of the answer when it is a struct with its own fields (an *Error is
// answered {"error": …}).
type StatusError interface {
	error
	HTTPStatus() int
}

// New returns an error answered with status.
func New(status int, format string, args ...any) *Error {
	return &Error{Status: status, Message: fmt.Sprintf(format, args...)}
}

// Unavailable wraps a dependency's failure into a 503, the status every
// sender retries (the RabbitmqSource does not retry a 500).
func Unavailable(what string, err error) *Error {
	return &Error{Status: http.StatusServiceUnavailable, Message: what + ": " + err.Error()}
}

// Status is the HTTP status err answers: its own when it knows it, 413 for
// a body over the limit, 503 for anything else, so that an unexpected
// failure is retried rather than dropped.
func Status(err error) int {
	var known StatusError
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &known):
		return known.HTTPStatus()
	case errors.As(err, &tooLarge):
		return http.StatusRequestEntityTooLarge
	default:
		return http.StatusServiceUnavailable
	}
}

// Write answers err with its status and a JSON body: {"error": …}, or the
// error itself when it is a StatusError that encodes as more (the problems
// of each bad entry of an invalid request).
func Write(w http.ResponseWriter, err error) int {
	status := Status(err)
	var body any = map[string]string{"error": err.Error()}
	var known StatusError
	var own *Error
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &own):
	case errors.As(err, &known):
		body = known
	case errors.As(err, &tooLarge):
		body = map[string]string{"error": fmt.Sprintf("body is larger than %d bytes", tooLarge.Limit)}
	}
	WriteJSON(w, status, body)
	return status
}

// WriteJSON answers status with v as JSON; a v that does not encode (a NaN
// among its numbers) is answered 500 with the error, not a cut-off body.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	var body bytes.Buffer
	if err := json.NewEncoder(&body).Encode(v); err != nil {
		status = http.StatusInternalServerError
		body.Reset()
		_ = json.NewEncoder(&body).Encode(map[string]string{"error": err.Error()})
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body.Bytes())
}
