// Package writer hands reports to the message brokers. Kafka and RabbitMQ are
// two implementations of one Writer contract; the gRPC Writer service of
// events/writerpb serves either, and Client calls it from the publisher.
package writer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/clima-dev/clima/events"
)

// ErrUnavailable wraps every failure to get reports durably onto a broker.
var ErrUnavailable = errors.New("broker unavailable")

// Writer publishes reports to a broker, one message per report.
//
// Publish returns nil only after the broker has durably taken every report
// (Kafka: acks=all; RabbitMQ: a publisher confirm of a persistent message);
// any error wraps ErrUnavailable and means some reports may not have been
// taken, so the caller retries the whole batch and consumers drop the
// duplicates. The context bounds the whole call. Implementations are safe
// for concurrent use; Close waits for in-flight publishes and releases the
// connections.
type Writer interface {
	Publish(ctx context.Context, reports []events.Report) error
	// Ping checks that the broker answers and knows the destination.
	Ping(ctx context.Context) error
	Close() error
}

// ContentType is the content type of every message a writer publishes.
const ContentType = "application/json"

// encode is the body of one report's message.
func encode(r events.Report) ([]byte, error) {
	body, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("encoding report %s: %w", r.ID, err)
	}
	return body, nil
}

func unavailable(what string, err error) error {
	return fmt.Errorf("%w: %s: %w", ErrUnavailable, what, err)
}
