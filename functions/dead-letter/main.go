// Command dead-letter is the dead-letter sink of the Triggers and the
// KafkaSource: it records every event the platform could not deliver, with
// a counter, so that nothing is dropped silently.
package main

import (
	"context"
	"log/slog"

	"github.com/clima-dev/clima/events"
	"github.com/clima-dev/clima/internal/config"
	"github.com/clima-dev/clima/internal/fnruntime"
	"github.com/clima-dev/clima/internal/store"
	"github.com/clima-dev/clima/internal/wire"
)

func main() { fnruntime.Main(build) }

// build wires the function from its environment.
func build(_ context.Context, env *config.Env, log *slog.Logger) (*fnruntime.Function, error) {
	s, err := store.Open(wire.StoreConfig(env, "dead-letter"))
	if err != nil {
		return nil, err
	}
	// A dead letter is an event the Broker took, however large: one refused
	// for its size elsewhere must still be recorded here.
	fn := fnruntime.EventFunctionLimit(newDeadLetters(s, log).handle, events.MaxEventBytes, log)
	fn.Ready = s.Ping
	fn.Close = func(context.Context) error { return s.Close() }
	return fn, nil
}
