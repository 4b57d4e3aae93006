// Package wire holds the wiring that several functions share: reading a
// setting's value and default from the environment, opening what it names,
// and handing the handlers to the function runtime. With each function's
// main.go it is the only code that imports internal/config and
// internal/fnruntime together with the pipeline's packages (events, store,
// writer, consume), which take plain values.
package wire

import (
	"context"
	"log/slog"
	"time"

	"google.golang.org/grpc"

	"github.com/clima-dev/clima/events/writerpb"
	"github.com/clima-dev/clima/internal/config"
	"github.com/clima-dev/clima/internal/consume"
	"github.com/clima-dev/clima/internal/fnruntime"
	"github.com/clima-dev/clima/internal/store"
	"github.com/clima-dev/clima/internal/writer"
)

// Defaults of the settings the functions share.
const (
	// ReportRetention (REPORT_RETENTION) is how long a store keeps a report.
	ReportRetention = 7 * 24 * time.Hour
	// DedupeWindow (DEDUPE_WINDOW) is how long a store remembers an id:
	// longer than the brokers keep a message.
	DedupeWindow = 14 * 24 * time.Hour
	// RecentMax (RECENT_MAX) is how many entries the clima:recent stream keeps.
	RecentMax = 1000
	// storeTimeout bounds one round trip of a consumer to its store; a
	// source's request outlasts it, so a store that hangs is answered 503
	// and retried.
	storeTimeout = 10 * time.Second
)

// StoreConfig reads a store's settings: STORE_URL, STORE_PASSWORD (from a
// Secret) and the retention settings.
func StoreConfig(env *config.Env, path string) store.Config {
	return store.Config{
		URL:          env.Required("STORE_URL"),
		Password:     env.Secret("STORE_PASSWORD", ""),
		Path:         path,
		Retention:    env.Duration("REPORT_RETENTION", ReportRetention),
		DedupeWindow: env.Duration("DEDUPE_WINDOW", DedupeWindow),
		RecentMax:    env.Int("RECENT_MAX", RecentMax, 1, 1_000_000),
	}
}

// Consumer builds a consumer function that stores what arrives by path
// ("kafka", "rabbitmq") into the store its environment names.
func Consumer(path string) fnruntime.Builder {
	return func(_ context.Context, env *config.Env, log *slog.Logger) (*fnruntime.Function, error) {
		s, err := store.Open(StoreConfig(env, path))
		if err != nil {
			return nil, err
		}
		fn := fnruntime.EventFunction(consume.NewHandler(s, path, storeTimeout).Handle, log)
		fn.Ready = s.Ping
		fn.Close = func(context.Context) error { return s.Close() }
		return fn, nil
	}
}

// Writer builds a writer function around w, a writer to broker: the gRPC
// Writer service, ready while the broker answers, w closed after the drain.
func Writer(w writer.Writer, broker string, env *config.Env, log *slog.Logger) *fnruntime.Function {
	// PUBLISH_TIMEOUT bounds one publish to the broker, so that a broker
	// that is down answers UNAVAILABLE in time for the publisher to retry.
	srv := writer.NewServer(w, broker, env.RequiredDuration("PUBLISH_TIMEOUT"), log)
	return &fnruntime.Function{
		GRPC:  func(s *grpc.Server) { writerpb.RegisterWriterServer(s, srv) },
		Ready: w.Ping,
		Close: func(context.Context) error { return w.Close() },
	}
}
