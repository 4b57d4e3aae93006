// Command kafka-writer serves the gRPC Writer service: it publishes each
// report as one record of the Kafka topic, keyed by country, with acks=all.
package main

import (
	"context"
	"log/slog"
	"strings"

	"github.com/clima-dev/clima/internal/config"
	"github.com/clima-dev/clima/internal/fnruntime"
	"github.com/clima-dev/clima/internal/wire"
	"github.com/clima-dev/clima/internal/writer"
)

func main() { fnruntime.Main(build) }

func build(_ context.Context, env *config.Env, log *slog.Logger) (*fnruntime.Function, error) {
	w := writer.NewKafka(writer.KafkaConfig{
		Brokers: strings.Split(env.Required("KAFKA_BROKERS"), ","),
		Topic:   env.String("KAFKA_TOPIC", "clima-topic"),
	})
	return wire.Writer(w, "kafka", env, log), nil
}
