package local

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"github.com/cloudevents/sdk-go/v2/types"
	"github.com/google/uuid"
	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"
	eventingv1 "knative.dev/eventing/pkg/apis/eventing/v1"
	"knative.dev/eventing/pkg/eventfilter"
	"knative.dev/eventing/pkg/eventfilter/attributes"
	"knative.dev/eventing/pkg/eventfilter/subscriptionsapi"
	duckv1 "knative.dev/pkg/apis/duck/v1"
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
// redelivers what was in flight and loses nothing.
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
			MinBytes:       1,
			MaxBytes:       16 << 20,
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
				time.Sleep(200 * time.Millisecond)
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

// broker is a Knative Broker with the Kafka broker's semantics: an event is
// answered 202 once it is appended to the Broker's topic, and each Trigger
// is a consumer group of that topic.
type broker struct {
	namespace, name string
	address         duckv1.Addressable // its ingress
	topic           string
	writer          *kafka.Writer
	log             *slog.Logger
}

func newBrokerWriter(brokers []string, topic string) *kafka.Writer {
	return &kafka.Writer{
		Addr:         kafka.TCP(brokers...),
		Topic:        topic,
		Balancer:     &kafka.Murmur2Balancer{},
		RequiredAcks: kafka.RequireAll,
		BatchSize:    256, // kafka-go allocates this many records per batch
		BatchBytes:   MaxEventBytes,
		BatchTimeout: time.Millisecond,
		MaxAttempts:  5,
	}
}

// MaxEventBytes bounds an event at the ingress, and so a record of the
// Broker's topic: a 10,000-report batch and its validated reply fit. In a
// cluster, scripts/kafka-broker-limits.sh and kafka-source/kafka.yaml raise
// the Kafka broker's limits to the same (a test holds them equal).
const MaxEventBytes = 16 << 20

func (b *broker) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		writeError(w, http.StatusMethodNotAllowed, "the broker ingress takes POST")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, MaxEventBytes)
	msg := cehttp.NewMessageFromHttpRequest(r)
	defer func() { _ = msg.Finish(nil) }()
	e, err := binding.ToEvent(r.Context(), msg)
	if err == nil {
		err = e.Validate()
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalid CloudEvent: "+err.Error())
		return
	}
	if err := b.append(r.Context(), e); err != nil {
		writeError(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	w.WriteHeader(http.StatusAccepted)
}

// append writes an event to the Broker's topic, keyed by its id, in binary
// mode (attributes in ce_ headers, the data as it came), so that any data a
// valid event carries, JSON or not, passes through untouched.
func (b *broker) append(ctx context.Context, e *event.Event) error {
	if err := b.writer.WriteMessages(ctx, eventRecord(e)); err != nil {
		return fmt.Errorf("appending to %s: %w", b.topic, err)
	}
	return nil
}

// eventRecord is a CloudEvent as a binary-mode Kafka record.
func eventRecord(e *event.Event) kafka.Message {
	headers := []kafka.Header{
		{Key: "ce_specversion", Value: []byte(e.SpecVersion())},
		{Key: "ce_id", Value: []byte(e.ID())},
		{Key: "ce_source", Value: []byte(e.Source())},
		{Key: "ce_type", Value: []byte(e.Type())},
	}
	add := func(key, value string) {
		if value != "" {
			headers = append(headers, kafka.Header{Key: key, Value: []byte(value)})
		}
	}
	add("content-type", e.DataContentType())
	add("ce_subject", e.Subject())
	add("ce_dataschema", e.DataSchema())
	if !e.Time().IsZero() {
		add("ce_time", e.Time().UTC().Format(time.RFC3339Nano))
	}
	for name, value := range e.Extensions() {
		if text, err := types.Format(value); err == nil {
			add("ce_"+name, text)
		}
	}
	return kafka.Message{Key: []byte(e.ID()), Value: e.Data(), Headers: headers}
}

func writeError(w http.ResponseWriter, status int, message string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": message})
}

// trigger dispatches the Broker's events that pass its filter to its
// subscriber, and appends replies to the Broker's topic.
type trigger struct {
	name       string
	filter     eventfilter.Filter // nil: every event passes
	subscriber duckv1.Addressable
	policy     policy
	broker     *broker
	sender     *sender
	counters
}

func (t *trigger) handle(ctx context.Context, m kafka.Message) bool {
	ev, err := recordAsCloudEvent(m, recordHeaders(m))
	if err != nil {
		t.broker.log.Error("undecodable record on the broker topic", "offset", m.Offset, "error", err)
		return true
	}
	if t.filter != nil && t.filter.Filter(ctx, *ev) == eventfilter.FailFilter {
		t.filtered.Add(1)
		return true
	}
	t.inFlight.Add(1)
	defer t.inFlight.Add(-1)
	for copy := range t.sender.copies() {
		result := t.sender.deliver(ctx, t.subscriber, ev, t.policy, t.broker)
		if ctx.Err() != nil {
			return false
		}
		if copy == 0 {
			t.count(result)
		}
	}
	return true
}

// triggerFilter is the filter a Trigger runs, chosen as Knative's broker
// chooses it: filters when set, else filter.attributes, else none (every
// event passes; pkg/broker/filter/filter_handler.go, filterEvent).
func triggerFilter(spec eventingv1.TriggerSpec) eventfilter.Filter {
	switch {
	case len(spec.Filters) > 0:
		return subscriptionsapi.CreateSubscriptionsAPIFilters(zap.NewNop(), spec.Filters)
	case spec.Filter != nil:
		return attributes.NewAttributesFilter(spec.Filter.Attributes)
	}
	return nil
}

// kafkaSource delivers the records of its topics as the KafkaSource does.
type kafkaSource struct {
	namespace, name string
	sink            duckv1.Addressable
	policy          policy
	sender          *sender
	counters
}

var notAlnum = regexp.MustCompile(`[^a-z0-9]`)

// toEvent makes of a record the CloudEvent the KafkaSource sends: the record
// itself when it is a CloudEvent, else a dev.knative.kafka.event.
func (s *kafkaSource) toEvent(m kafka.Message) (*event.Event, error) {
	headers := recordHeaders(m)
	if headers["ce_specversion"] != "" || strings.HasPrefix(headers["content-type"], "application/cloudevents") {
		return recordAsCloudEvent(m, headers)
	}
	e := event.New()
	e.SetID(fmt.Sprintf("partition:%d/offset:%d", m.Partition, m.Offset))
	e.SetSource(fmt.Sprintf("/apis/v1/namespaces/%s/kafkasources/%s#%s", s.namespace, s.name, m.Topic))
	e.SetType("dev.knative.kafka.event")
	e.SetSubject(fmt.Sprintf("partition:%d#%d", m.Partition, m.Offset))
	if !m.Time.IsZero() {
		e.SetTime(m.Time)
	}
	if m.Key != nil {
		e.SetExtension("key", string(m.Key))
		e.SetExtension("partitionkey", string(m.Key))
	}
	for name, value := range headers {
		if name == "content-type" {
			continue
		}
		if ext := "kafkaheader" + notAlnum.ReplaceAllString(name, ""); len(ext) <= 20 {
			e.SetExtension(ext, value)
		}
	}
	e.SetDataContentType(headers["content-type"])
	e.DataEncoded = m.Value
	return &e, nil
}

// recordHeaders maps a record's header names, lower-cased, to their values.
func recordHeaders(m kafka.Message) map[string]string {
	headers := make(map[string]string, len(m.Headers))
	for _, h := range m.Headers {
		headers[strings.ToLower(h.Key)] = string(h.Value)
	}
	return headers
}

// recordAsCloudEvent reads a record written as a CloudEvent (binary mode:
// ce_ headers; structured mode: the JSON event as value).
func recordAsCloudEvent(m kafka.Message, headers map[string]string) (*event.Event, error) {
	if headers["ce_specversion"] == "" {
		var e event.Event
		if err := json.Unmarshal(m.Value, &e); err != nil {
			return nil, err
		}
		return &e, nil
	}
	e := event.New()
	e.SetID(headers["ce_id"])
	e.SetSource(headers["ce_source"])
	e.SetType(headers["ce_type"])
	for name, value := range headers {
		attr, ok := strings.CutPrefix(name, "ce_")
		if !ok || attr == "specversion" || attr == "id" || attr == "source" || attr == "type" {
			continue
		}
		switch attr {
		case "subject":
			e.SetSubject(value)
		case "dataschema":
			e.SetDataSchema(value)
		case "time":
			if t, err := time.Parse(time.RFC3339Nano, value); err == nil {
				e.SetTime(t)
			}
		default:
			e.SetExtension(attr, value)
		}
	}
	e.SetDataContentType(headers["content-type"])
	e.DataEncoded = m.Value
	return &e, e.Validate()
}

func (s *kafkaSource) handle(ctx context.Context, m kafka.Message) bool {
	e, err := s.toEvent(m)
	if err != nil {
		s.failed.Add(1)
		return true
	}
	s.inFlight.Add(1)
	defer s.inFlight.Add(-1)
	for copy := range s.sender.copies() {
		result := s.sender.deliver(ctx, s.sink, e, s.policy, nil)
		if ctx.Err() != nil {
			return false
		}
		if copy == 0 {
			s.count(result)
		}
	}
	return true
}

// rabbitSource delivers the messages of a queue as the RabbitmqSource does:
// prefetch 100, parallelism workers, ack after a 2xx, and otherwise, once
// its retries are spent, a nack without requeue (the queue's dead-letter
// exchange keeps the message).
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
	conn, err := amqp.DialConfig(s.url, amqp.Config{Dial: amqp.DefaultDial(5 * time.Second), Heartbeat: 10 * time.Second})
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
	var result outcome
	for copy := range s.sender.copies() {
		r := s.sender.deliver(ctx, s.sink, &e, s.policy, nil)
		if ctx.Err() != nil {
			return false
		}
		if copy == 0 {
			result = r
		}
	}
	s.count(result)
	if result == delivered {
		_ = d.Ack(false)
	} else {
		_ = d.Nack(false, false)
	}
	return true
}
