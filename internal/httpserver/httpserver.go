// Package httpserver is what every HTTP server of clima sets up alike — a
// function's, clima dev's Broker ingress, a Service's local endpoint, the
// dashboard: the bound on how long a client may take to send a request's
// headers, so that a slow one cannot hold a connection, and Go's profiles
// where they are asked for.
package httpserver

import (
	"net/http"
	"net/http/pprof"
	"time"
)

// ReadHeaderTimeout bounds the reading of a request's headers.
const ReadHeaderTimeout = 10 * time.Second

// New is a server of h with that bound; the caller adds the bounds its
// requests need (a body's read, a response's write, an idle connection).
func New(h http.Handler) *http.Server {
	return &http.Server{Handler: h, ReadHeaderTimeout: ReadHeaderTimeout}
}

// Profiles serves Go's profiles on mux, under /debug/pprof/.
func Profiles(mux *http.ServeMux) {
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
}
