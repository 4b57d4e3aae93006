package eventing

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/clima-dev/clima/events"
)

// DispatcherStatus counts what a dispatcher did.
type DispatcherStatus struct {
	InFlight     int64 `json:"in_flight"`
	Delivered    int64 `json:"delivered"`
	DeadLettered int64 `json:"dead_lettered"`
	Failed       int64 `json:"failed"`
	Filtered     int64 `json:"filtered,omitempty"`
}

type counters struct {
	inFlight, delivered, deadLettered, failed, filtered atomic.Int64
}

func (c *counters) count(o outcome) {
	switch o {
	case delivered:
		c.delivered.Add(1)
	case deadLettered:
		c.deadLettered.Add(1)
	default:
		c.failed.Add(1)
	}
}

func (c *counters) status() DispatcherStatus {
	return DispatcherStatus{InFlight: c.inFlight.Load(), Delivered: c.delivered.Load(), DeadLettered: c.deadLettered.Load(),
		Failed: c.failed.Load(), Filtered: c.filtered.Load()}
}

// kafkaLoop consumes topics in a consumer group and hands each record to
// handle, up to workers at once. An offset is committed once its record and
// every record before it in the partition are handled, so a stop or a crash
// redelivers what was in flight and loses nothing. Written here: kafka-go's
// Reader commits what it is told, and the unordered dispatch with ordered
// commits is the Kafka broker's data plane (Java, in eventing-kafka-broker,
// which is not a Go library).
type kafkaLoop struct {
	reader  *kafka.Reader
	workers int
	// handle returns false when it did not finish (the runtime is
	// stopping): the record is then not committed.
	handle func(ctx context.Context, m kafka.Message) bool
	log    *slog.Logger

	mu      sync.Mutex
	pending map[int][]*tracked // per partition, in fetch order
}

type tracked struct {
	msg  kafka.Message
	done bool
}

func newKafkaLoop(brokers []string, group string, topics []string, workers int, log *slog.Logger, handle func(context.Context, kafka.Message) bool) *kafkaLoop {
	return &kafkaLoop{
		reader: kafka.NewReader(kafka.ReaderConfig{
			Brokers:     brokers,
			GroupID:     group,
			GroupTopics: topics,
			// A fetch returns as soon as a record is there: waiting for
			// more (MinBytes 64 kB, 5 ms) took 10% more records per second
			// but added ~250 ms to every hop at low load, and polled
			// 1,200 times a second when idle.
			MinBytes: 1,
			MaxBytes: events.MaxEventBytes, // a fetch holds the largest record

			MaxWait:        100 * time.Millisecond,
			StartOffset:    kafka.FirstOffset,
			CommitInterval: 50 * time.Millisecond,
			QueueCapacity:  1000,
		}),
		workers: workers,
		handle:  handle,
		log:     log,
		pending: map[int][]*tracked{},
	}
}

func (l *kafkaLoop) run(ctx context.Context) {
	slots := make(chan struct{}, l.workers)
	var wg sync.WaitGroup
	for {
		m, err := l.reader.FetchMessage(ctx)
		if err != nil {
			if ctx.Err() == nil {
				l.log.Error("fetching from Kafka", "error", err)
				// A pause before the next fetch, which a stop cuts short.
				select {
				case <-time.After(200 * time.Millisecond):
				case <-ctx.Done():
				}
				continue
			}
			break
		}
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		t := l.track(m)
		wg.Go(func() {
			defer func() { <-slots }()
			if l.handle(ctx, m) {
				l.complete(ctx, t)
			}
		})
	}
	wg.Wait()
	if err := l.reader.Close(); err != nil {
		l.log.Warn("closing Kafka reader", "error", err)
	}
}

func (l *kafkaLoop) track(m kafka.Message) *tracked {
	l.mu.Lock()
	defer l.mu.Unlock()
	t := &tracked{msg: m}
	l.pending[m.Partition] = append(l.pending[m.Partition], t)
	return t
}

// complete marks a record handled and commits the longest handled prefix
// of its partition.
func (l *kafkaLoop) complete(ctx context.Context, t *tracked) {
	l.mu.Lock()
	t.done = true
	queue := l.pending[t.msg.Partition]
	var last *kafka.Message
	for len(queue) > 0 && queue[0].done {
		last = &queue[0].msg
		queue = queue[1:]
	}
	l.pending[t.msg.Partition] = queue
	l.mu.Unlock()
	if last != nil {
		if err := l.reader.CommitMessages(ctx, *last); err != nil && ctx.Err() == nil {
			l.log.Warn("committing offset", "partition", last.Partition, "offset", last.Offset, "error", err)
		}
	}
}
