// Package rabbit is how clima connects to RabbitMQ: the rabbit-writer, clima
// dev's RabbitmqSource and topology, and the tests dial alike.
package rabbit

import (
	"context"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

const (
	// dialTimeout bounds a connection's setup when ctx sets no deadline.
	dialTimeout = 5 * time.Second
	// heartbeat is how often both ends show they are alive: a broker that
	// vanished is noticed within two of them.
	heartbeat = 10 * time.Second
)

// Dial connects to the RabbitMQ at url, within ctx's deadline (or
// dialTimeout), naming the connection name in the management UI.
func Dial(ctx context.Context, url, name string) (*amqp.Connection, error) {
	timeout := dialTimeout
	if deadline, ok := ctx.Deadline(); ok {
		if timeout = time.Until(deadline); timeout <= 0 {
			return nil, context.DeadlineExceeded
		}
	}
	return amqp.DialConfig(url, amqp.Config{
		Dial:       amqp.DefaultDial(timeout),
		Heartbeat:  heartbeat,
		Properties: amqp.Table{"connection_name": name},
	})
}
