// Command rabbit-writer serves the gRPC Writer service: it publishes each
// report as one persistent RabbitMQ message, with publisher confirms.
package main

import (
	"context"
	"log/slog"
	"net/url"

	"github.com/clima-dev/clima/internal/config"
	"github.com/clima-dev/clima/internal/fnruntime"
	"github.com/clima-dev/clima/internal/wire"
	"github.com/clima-dev/clima/internal/writer"
)

func main() { fnruntime.Main(build) }

func build(_ context.Context, env *config.Env, log *slog.Logger) (*fnruntime.Function, error) {
	// The URL names the server; the credentials come from a Secret.
	u, err := url.Parse(env.String("RABBITMQ_URL", "amqp://127.0.0.1:5672/"))
	if err != nil {
		return nil, err
	}
	u.User = url.UserPassword(env.String("RABBITMQ_USERNAME", "guest"), env.Secret("RABBITMQ_PASSWORD", "guest"))
	queue := env.String("RABBITMQ_QUEUE", "clima-queue")
	w := writer.NewRabbit(writer.RabbitConfig{
		URL:        u.String(),
		Exchange:   env.String("RABBITMQ_EXCHANGE", ""),
		RoutingKey: env.String("RABBITMQ_ROUTING_KEY", queue),
		Queue:      queue,
		Channels:   env.Int("RABBITMQ_CHANNELS", 16, 1, 1024),
	})
	return wire.Writer(w, "rabbitmq", env, log), nil
}
