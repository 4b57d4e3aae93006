package eventing

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/clima-dev/clima/internal/rabbit"
	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/uuid"
	amqp "github.com/rabbitmq/amqp091-go"
	duckv1 "knative.dev/pkg/apis/duck/v1"
)

// rabbitSource delivers the messages of a queue as the RabbitmqSource does:
// prefetch 100, parallelism workers, ack after a 2xx, and otherwise, once
// its retries are spent, a nack without requeue (the queue's dead-letter
// exchange keeps the message). Written here because the RabbitmqSource's
// adapter (knative.dev/eventing-rabbitmq) is not served as a module; its
// deliveries go through kncloudevents all the same.
type rabbitSource struct {
	namespace, name string
	url, queue      string
	parallelism     int
	sink            duckv1.Addressable
	policy          policy
	sender          *sender
	log             *slog.Logger
	counters
}

func (s *rabbitSource) run(ctx context.Context) {
	for ctx.Err() == nil {
		err := s.consume(ctx)
		if ctx.Err() != nil {
			return
		}
		s.log.Warn("RabbitMQ consumer stopped; reconnecting", "queue", s.queue, "error", err)
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

func (s *rabbitSource) consume(ctx context.Context) error {
	conn, err := rabbit.Dial(ctx, s.url, "clima dev RabbitmqSource "+s.name)
	if err != nil {
		return err
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		return err
	}
	if err := ch.Qos(100, 0, false); err != nil {
		return err
	}
	deliveries, err := ch.Consume(s.queue, "clima-dev-"+s.name, false, false, false, false, nil)
	if err != nil {
		return err
	}
	var wg sync.WaitGroup
	for range s.parallelism {
		wg.Go(func() {
			for d := range deliveries {
				if !s.handle(ctx, d) {
					return
				}
			}
		})
	}
	closed := conn.NotifyClose(make(chan *amqp.Error, 1))
	select {
	case <-ctx.Done():
		// Unacked messages go back to the queue when the connection closes.
		_ = conn.Close()
		wg.Wait()
		return ctx.Err()
	case err := <-closed:
		wg.Wait()
		if err == nil {
			return errors.New("connection closed")
		}
		return err
	}
}

// handle delivers one message; false when the runtime is stopping.
func (s *rabbitSource) handle(ctx context.Context, d amqp.Delivery) bool {
	e := event.New()
	id := d.MessageId
	if id == "" {
		id = uuid.NewString()
	}
	e.SetID(id)
	e.SetSubject(id)
	e.SetSource(fmt.Sprintf("/apis/v1/namespaces/%s/rabbitmqsources/%s#%s", s.namespace, s.name, s.queue))
	e.SetType("dev.knative.rabbitmq.event")
	if !d.Timestamp.IsZero() {
		e.SetTime(d.Timestamp)
	}
	e.SetDataContentType(d.ContentType)
	e.DataEncoded = d.Body
	s.inFlight.Add(1)
	defer s.inFlight.Add(-1)
	result, done := s.sender.deliverAll(ctx, s.sink, &e, s.policy, nil)
	if !done {
		return false
	}
	s.count(result)
	if result == delivered {
		_ = d.Ack(false)
	} else {
		_ = d.Nack(false, false)
	}
	return true
}
