package writer

import (
	"context"
	"errors"
	"fmt"
	"sync"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/clima-dev/clima/events"
	"github.com/clima-dev/clima/internal/rabbit"
)

// RabbitConfig says where the RabbitMQ writer publishes.
type RabbitConfig struct {
	// URL is an amqp:// URL whose user part holds the credentials.
	URL string
	// Exchange is where messages go; "" is the default exchange, which
	// routes straight to the queue named by RoutingKey.
	Exchange   string
	RoutingKey string
	// Queue must exist before the writer publishes; Ping checks it.
	Queue string
	// Channels bounds how many publishes run at once, one channel each.
	Channels int
}

// Rabbit publishes each country group as one persistent message whose
// message-id is derived from its reports' ids, on a pool of channels in
// confirm mode over one connection that is redialled whenever it is lost.
type Rabbit struct {
	cfg   RabbitConfig
	slots chan struct{}        // one per channel that may be in use
	idle  chan *confirmChannel // channels ready for a publish

	mu     sync.Mutex
	conn   *amqp.Connection
	closed bool
}

// NewRabbit returns a writer to cfg. It connects on first use.
func NewRabbit(cfg RabbitConfig) *Rabbit {
	if cfg.Channels <= 0 {
		cfg.Channels = 8
	}
	return &Rabbit{
		cfg:   cfg,
		slots: make(chan struct{}, cfg.Channels),
		idle:  make(chan *confirmChannel, cfg.Channels),
	}
}

// confirmChannel is a channel in confirm mode, used by one publish at a time.
type confirmChannel struct {
	ch       *amqp.Channel
	confirms chan amqp.Confirmation
	// returns is unbuffered: the connection hands over a basic.return before
	// it processes the confirm that follows it, so a publish that has all its
	// confirms has seen every return too.
	returns chan amqp.Return
}

// Publish sends every country group and returns after the broker confirmed
// each one as routed to a queue and, being persistent, written to disk.
func (r *Rabbit) Publish(ctx context.Context, reports []events.Report) error {
	groups, err := countryGroups(reports)
	if err != nil {
		return err
	}
	select {
	case r.slots <- struct{}{}:
	case <-ctx.Done():
		return unavailable("waiting for a RabbitMQ channel", ctx.Err())
	}
	defer func() { <-r.slots }()

	cc, err := r.channel(ctx)
	if err != nil {
		return unavailable("opening a RabbitMQ channel", err)
	}
	if err := r.publish(ctx, cc, groups); err != nil {
		discard(cc)
		return unavailable("publishing to RabbitMQ queue "+r.cfg.Queue, err)
	}
	r.idle <- cc
	return nil
}

func (r *Rabbit) publish(ctx context.Context, cc *confirmChannel, groups []group) error {
	sent := make(chan error, 1)
	go func() {
		for _, g := range groups {
			err := cc.ch.PublishWithContext(ctx, r.cfg.Exchange, r.cfg.RoutingKey, true, false, amqp.Publishing{
				ContentType:  ContentType,
				DeliveryMode: amqp.Persistent,
				MessageId:    g.id,
				Timestamp:    g.first.AcceptedAt,
				Headers:      amqp.Table{ReportCountHeader: int32(g.count)},
				Body:         g.body,
			})
			if err != nil {
				sent <- err
				return
			}
		}
		sent <- nil
	}()

	var unroutable []string
	for confirmed := 0; confirmed < len(groups); {
		select {
		case err := <-sent:
			if err != nil {
				return err
			}
			sent = nil
		case ret, ok := <-cc.returns:
			if !ok {
				return errors.New("channel closed")
			}
			unroutable = append(unroutable, ret.MessageId)
		case c, ok := <-cc.confirms:
			if !ok {
				return errors.New("channel closed before every confirm")
			}
			if !c.Ack {
				return fmt.Errorf("broker refused message %d (nack)", c.DeliveryTag)
			}
			confirmed++
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if len(unroutable) > 0 {
		return fmt.Errorf("%d messages were routed to no queue (first %s): does %q exist?", len(unroutable), unroutable[0], r.cfg.Queue)
	}
	return nil
}

// channel returns an idle channel or opens one, dialling when needed.
func (r *Rabbit) channel(ctx context.Context) (*confirmChannel, error) {
	for cc := r.takeIdle(); cc != nil; cc = r.takeIdle() {
		if !cc.ch.IsClosed() {
			return cc, nil
		}
		discard(cc)
	}
	conn, err := r.connection(ctx)
	if err != nil {
		return nil, err
	}
	ch, err := conn.Channel()
	if err != nil {
		return nil, err
	}
	if err := ch.Confirm(false); err != nil {
		_ = ch.Close()
		return nil, err
	}
	return &confirmChannel{
		ch:       ch,
		confirms: ch.NotifyPublish(make(chan amqp.Confirmation, 256)),
		returns:  ch.NotifyReturn(make(chan amqp.Return)),
	}, nil
}

func (r *Rabbit) takeIdle() *confirmChannel {
	select {
	case cc := <-r.idle:
		return cc
	default:
		return nil
	}
}

func (r *Rabbit) connection(ctx context.Context) (*amqp.Connection, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, errors.New("writer is closed")
	}
	if r.conn != nil && !r.conn.IsClosed() {
		return r.conn, nil
	}
	conn, err := rabbit.Dial(ctx, r.cfg.URL, "clima rabbit-writer")
	if err != nil {
		return nil, err
	}
	r.conn = conn
	return conn, nil
}

// discard closes a channel whose state is unknown after a failure, in the
// background: closing waits for the broker, which may be the thing that
// failed. Its notification channels are drained meanwhile, so that the
// connection, which hands them over synchronously, is never left blocked.
func discard(cc *confirmChannel) {
	go func() {
		for range cc.returns {
		}
	}()
	go func() {
		for range cc.confirms {
		}
	}()
	go func() { _ = cc.ch.Close() }()
}

// Ping checks that the queue exists, on a channel of its own.
func (r *Rabbit) Ping(ctx context.Context) error {
	conn, err := r.connection(ctx)
	if err != nil {
		return unavailable("connecting to RabbitMQ", err)
	}
	ch, err := conn.Channel()
	if err != nil {
		return unavailable("opening a RabbitMQ channel", err)
	}
	defer ch.Close()
	if _, err := ch.QueueDeclarePassive(r.cfg.Queue, true, false, false, false, nil); err != nil {
		return unavailable("checking RabbitMQ queue "+r.cfg.Queue, err)
	}
	return nil
}

// Close waits for in-flight publishes and closes the connection.
func (r *Rabbit) Close() error {
	for range cap(r.slots) {
		r.slots <- struct{}{}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
	if r.conn == nil || r.conn.IsClosed() {
		return nil
	}
	if err := r.conn.Close(); err != nil {
		return fmt.Errorf("closing RabbitMQ connection: %w", err)
	}
	return nil
}
