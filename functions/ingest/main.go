// Command ingest validates weather reports: it answers the Broker's
// clima.weather.reported events with clima.weather.validated replies, and
// takes plain JSON from legacy clients at POST /input, sending the validated
// event to its sink (K_SINK, the Broker).
package main

import (
	cloudevents "github.com/cloudevents/sdk-go/v2"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"

	"context"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/gorilla/mux"

	"github.com/clima-dev/clima/internal/config"
	"github.com/clima-dev/clima/internal/fnruntime"
)

func main() { fnruntime.Main(build) }

// build wires the function from its environment.
func build(_ context.Context, env *config.Env, log *slog.Logger) (*fnruntime.Function, error) {
	sink := env.Required("K_SINK")
	timeout := env.RequiredDuration("SINK_TIMEOUT")
	client, err := cloudevents.NewClientHTTP(
		cehttp.WithTarget(sink),
		cehttp.WithClient(http.Client{Timeout: timeout}),
	)
	if err != nil {
		return nil, fmt.Errorf("building the sink client: %w", err)
	}
	in := newIngest(client, log)
	return &fnruntime.Function{
		Routes: func(r *mux.Router) {
			r.Handle("/", fnruntime.CloudEvents(in.handleReported, log)).Methods(http.MethodPost)
			r.HandleFunc("/input", in.serveInput).Methods(http.MethodPost)
		},
	}, nil
}
