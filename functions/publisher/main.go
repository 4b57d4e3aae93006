// Command publisher fans a clima.weather.validated event out to both
// writers over gRPC at once, and fails the event with a retryable status
// when either of them did not durably publish it.
package main

import (
	"context"
	"log/slog"

	"github.com/clima-dev/clima/internal/config"
	"github.com/clima-dev/clima/internal/fnruntime"
	"github.com/clima-dev/clima/internal/writer"
)

func main() { fnruntime.Main(build) }

// build wires the function from its environment.
func build(_ context.Context, env *config.Env, log *slog.Logger) (*fnruntime.Function, error) {
	// WRITERS_TIMEOUT bounds a publish to both writers: longer than a
	// writer waits for its broker (PUBLISH_TIMEOUT), with room for its cold
	// start; TestTimeoutChain holds the manifests' values in that order.
	p := &publisher{timeout: env.RequiredDuration("WRITERS_TIMEOUT")}
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
