// Command publisher fans a clima.weather.validated event out to both
// writers over gRPC at once, and fails the event with a retryable status
// when either of them did not durably publish it.
package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/clima-dev/clima/internal/config"
	"github.com/clima-dev/clima/internal/fnruntime"
	"github.com/clima-dev/clima/internal/writer"
)

func main() { fnruntime.Main(build) }

// writersTimeout (WRITERS_TIMEOUT) bounds a publish to both writers: room
// for a writer's own broker timeout (wire.WriterPublishTimeout) and its cold
// start from zero.
const writersTimeout = 15 * time.Second

// build wires the function from its environment.
func build(_ context.Context, env *config.Env, log *slog.Logger) (*fnruntime.Function, error) {
	p := &publisher{timeout: env.Duration("WRITERS_TIMEOUT", writersTimeout)}
	for _, key := range []string{"KAFKA_WRITER_ADDR", "RABBIT_WRITER_ADDR"} {
		addr := env.Required(key)
		if addr == "" {
			continue
		}
		client, err := writer.Dial(addr)
		if err != nil {
			_ = p.close(context.Background())
			return nil, err
		}
		p.writers = append(p.writers, client)
		p.batches = append(p.batches, coalesced(client, p.timeout))
	}
	fn := fnruntime.EventFunction(p.handle, log)
	fn.Close = p.close
	return fn, nil
}
