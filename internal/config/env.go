// Package config reads a function's settings from its environment, once, at
// start. Every key read is recorded so that it can be logged (secrets masked)
// and checked against the function's manifest.
package config

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sort"
	"strconv"
	"time"
)

// Env reads typed settings and collects every error, so that a function
// reports all of its bad settings at once.
type Env struct {
	lookup  func(string) (string, bool)
	errs    []error
	values  map[string]string
	secrets map[string]bool
}

// FromOS reads the process environment.
func FromOS() *Env { return New(os.LookupEnv) }

// New reads settings through lookup.
func New(lookup func(string) (string, bool)) *Env {
	return &Env{lookup: lookup, values: map[string]string{}, secrets: map[string]bool{}}
}

func (e *Env) get(key, def string) string {
	v, ok := e.lookup(key)
	if !ok || v == "" {
		v = def
	}
	e.values[key] = v
	return v
}

// String returns the value of key, or def when it is unset or empty.
func (e *Env) String(key, def string) string { return e.get(key, def) }

// Required returns the value of key and records an error when it is unset.
func (e *Env) Required(key string) string {
	v := e.get(key, "")
	if v == "" {
		e.errs = append(e.errs, fmt.Errorf("%s is required", key))
	}
	return v
}

// Secret returns the value of key, or def, and masks it in logs.
func (e *Env) Secret(key, def string) string {
	e.secrets[key] = true
	return e.get(key, def)
}

// Int returns key as an integer within [min, max], or def.
func (e *Env) Int(key string, def, min, max int) int {
	raw := e.get(key, strconv.Itoa(def))
	n, err := strconv.Atoi(raw)
	if err != nil || n < min || n > max {
		e.errs = append(e.errs, fmt.Errorf("%s=%q: want an integer from %d to %d", key, raw, min, max))
		return def
	}
	return n
}

// Duration returns key as a positive Go duration ("750ms", "30s"), or def.
func (e *Env) Duration(key string, def time.Duration) time.Duration {
	raw := e.get(key, def.String())
	d, err := time.ParseDuration(raw)
	if err != nil || d <= 0 {
		e.errs = append(e.errs, fmt.Errorf("%s=%q: want a positive duration such as 500ms or 30s", key, raw))
		return def
	}
	return d
}

// RequiredDuration returns key as a positive Go duration and records an
// error when it is unset: a setting whose one home is the manifest that
// sets it (a time-out the manifests' tests hold in order with others).
func (e *Env) RequiredDuration(key string) time.Duration {
	raw := e.Required(key)
	if raw == "" {
		return 0
	}
	d, err := time.ParseDuration(raw)
	if err != nil || d <= 0 {
		e.errs = append(e.errs, fmt.Errorf("%s=%q: want a positive duration such as 500ms or 30s", key, raw))
		return 0
	}
	return d
}

// Err joins every error met so far.
func (e *Env) Err() error { return errors.Join(e.errs...) }

// Keys lists every key read, sorted.
func (e *Env) Keys() []string {
	keys := make([]string, 0, len(e.values))
	for k := range e.values {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// LogValue shows every setting read, secrets masked.
func (e *Env) LogValue() slog.Value {
	attrs := make([]slog.Attr, 0, len(e.values))
	for _, k := range e.Keys() {
		v := e.values[k]
		if e.secrets[k] && v != "" {
			v = "********"
		}
		attrs = append(attrs, slog.String(k, v))
	}
	return slog.GroupValue(attrs...)
}
