package writer_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/segmentio/kafka-go"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/clima-dev/clima/events"
	"github.com/clima-dev/clima/events/writerpb"
	"github.com/clima-dev/clima/internal/serving"
	"github.com/clima-dev/clima/internal/testenv"
	"github.com/clima-dev/clima/internal/writer"
)

// publishTimeout is the writers' bound on one publish in these tests.
const publishTimeout = 2 * time.Second

// brokerFixture is one broker with a Writer to it, served over gRPC as in
// production, and a way to read back what the broker holds.
type brokerFixture struct {
	gate   *testenv.Gate
	client *writer.Client
	// messages reads every message the broker holds, waiting for want.
	messages func(t *testing.T, want int) []message
}

// message is one broker message as a consumer would see it.
type message struct {
	key         string // Kafka record key
	messageID   string // AMQP message-id
	contentType string
	report      events.Report
}

var brokers = []struct {
	name  string
	start func(t *testing.T) *brokerFixture
	// identity is what a message must carry to name its report.
	identity func(m message) string
}{
	{"kafka", startKafka, func(m message) string { return m.key }},
	{"rabbitmq", startRabbit, func(m message) string { return m.messageID }},
}

// TestWriterContract runs one suite against both writers.
func TestWriterContract(t *testing.T) {
	for _, b := range brokers {
		t.Run(b.name, func(t *testing.T) {
			t.Run("publishes exactly one message per report", func(t *testing.T) {
				f := b.start(t)
				reports := testenv.Reports("contract-"+b.name, 10_000)
				publishConcurrently(t, f.client, reports, 20)

				got := f.messages(t, len(reports))
				if len(got) != len(reports) {
					t.Fatalf("broker holds %d messages, want %d", len(got), len(reports))
				}
				want := map[string]events.Report{}
				for _, r := range reports {
					want[r.ID] = r
				}
				for _, m := range got {
					r, ok := want[m.report.ID]
					if !ok {
						t.Fatalf("message for unknown or repeated report %q", m.report.ID)
					}
					delete(want, m.report.ID)
					if m.contentType != writer.ContentType {
						t.Errorf("report %s: content type %q, want %q", r.ID, m.contentType, writer.ContentType)
					}
					if b.name == "kafka" && m.key != r.Country {
						t.Errorf("report %s: key %q, want its country %q", r.ID, m.key, r.Country)
					}
					if b.name == "rabbitmq" && m.messageID != r.ID {
						t.Errorf("report %s: message-id %q, want the report id", r.ID, m.messageID)
					}
					if !m.report.AcceptedAt.Equal(r.AcceptedAt) || m.report.Description != r.Description || m.report.Weather != r.Weather {
						t.Errorf("report %s arrived as %+v, want %+v", r.ID, m.report, r)
					}
				}
				if len(want) > 0 {
					t.Errorf("%d reports have no message", len(want))
				}
			})

			t.Run("answers Unavailable within 5s when the broker stops, and recovers", func(t *testing.T) {
				f := b.start(t)
				publish(t, f.client, testenv.Reports("before-stop", 1)) // a warm connection to lose

				f.gate.Down()
				start := time.Now()
				err := f.client.Publish(context.Background(), testenv.Reports("while-stopped", 5))
				took := time.Since(start)
				assertUnavailable(t, err)
				if took > 5*time.Second {
					t.Errorf("Unavailable took %s, want at most 5s", took)
				}

				f.gate.Up()
				testenv.Eventually(t, 20*time.Second, func() error {
					return f.client.Publish(context.Background(), testenv.Reports("after-restart", 1))
				}, "a publish to succeed once the broker is back")
			})

			t.Run("never answers success before the broker confirms", func(t *testing.T) {
				f := b.start(t)
				publish(t, f.client, testenv.Reports("warm", 1))

				f.gate.Hold() // the broker takes messages; its confirms do not arrive
				err := f.client.Publish(context.Background(), testenv.Reports("unconfirmed", 1))
				assertUnavailable(t, err)
				f.gate.Release()
				got := f.messages(t, 2)
				if len(got) < 2 {
					t.Fatalf("broker holds %d messages, want the unconfirmed one too (2)", len(got))
				}
			})
		})
	}
}

func assertUnavailable(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		t.Fatal("publish succeeded, want Unavailable")
	}
	if !errors.Is(err, writer.ErrUnavailable) || status.Code(err) != codes.Unavailable {
		t.Fatalf("publish failed with %v, want gRPC Unavailable", err)
	}
}

func publish(t *testing.T, c *writer.Client, reports []events.Report) {
	t.Helper()
	if err := c.Publish(context.Background(), reports); err != nil {
		t.Fatalf("publishing %d reports: %v", len(reports), err)
	}
}

// publishConcurrently publishes reports in batches from several callers.
func publishConcurrently(t *testing.T, c *writer.Client, reports []events.Report, callers int) {
	t.Helper()
	size := (len(reports) + callers - 1) / callers
	var wg sync.WaitGroup
	errs := make(chan error, callers)
	for start := 0; start < len(reports); start += size {
		batch := reports[start:min(start+size, len(reports))]
		wg.Go(func() { errs <- c.Publish(context.Background(), batch) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("publishing: %v", err)
		}
	}
}

// serve runs w as the gRPC Writer service and returns a client of it.
func serve(t *testing.T, w writer.Writer) *writer.Client {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(grpc.MaxRecvMsgSize(serving.MaxMessageBytes))
	writerpb.RegisterWriterServer(srv, writer.NewServer(w, publishTimeout, serving.NewLogger("test")))
	go func() { _ = srv.Serve(lis) }()
	client, err := writer.Dial(lis.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = client.Close()
		srv.Stop()
		_ = w.Close()
	})
	return client
}

func startKafka(t *testing.T) *brokerFixture {
	const topic = "clima-topic"
	gate := &testenv.Gate{}
	cluster := testenv.StartKafka(t, topic, 2, gate)
	brokers := cluster.ListenAddrs()
	w := writer.NewKafka(writer.KafkaConfig{Brokers: brokers, Topic: topic})
	return &brokerFixture{
		gate:   gate,
		client: serve(t, w),
		messages: func(t *testing.T, want int) []message {
			t.Helper()
			var all []message
			for partition := range 2 {
				all = append(all, readPartition(t, brokers[0], topic, partition)...)
			}
			return all
		},
	}
}

func readPartition(t *testing.T, broker, topic string, partition int) []message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := kafka.DialLeader(ctx, "tcp", broker, topic, partition)
	if err != nil {
		t.Fatalf("dialing partition %d: %v", partition, err)
	}
	defer conn.Close()
	last, err := conn.ReadLastOffset()
	if err != nil {
		t.Fatalf("reading last offset of partition %d: %v", partition, err)
	}
	var out []message
	for offset := int64(0); offset < last; {
		if _, err := conn.Seek(offset, kafka.SeekAbsolute); err != nil {
			t.Fatal(err)
		}
		_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		batch := conn.ReadBatch(1, 50<<20)
		for {
			m, err := batch.ReadMessage()
			if err != nil {
				break
			}
			offset = m.Offset + 1
			msg := message{key: string(m.Key)}
			for _, h := range m.Headers {
				if h.Key == "content-type" {
					msg.contentType = string(h.Value)
				}
			}
			if err := json.Unmarshal(m.Value, &msg.report); err != nil {
				t.Fatalf("record %d/%d is not a report: %v", partition, m.Offset, err)
			}
			out = append(out, msg)
		}
		_ = batch.Close()
	}
	return out
}

func startRabbit(t *testing.T) *brokerFixture {
	url := testenv.RabbitURL(t)
	ch := testenv.RabbitChannel(t, url)
	queue := fmt.Sprintf("clima-test-%d", time.Now().UnixNano())
	if _, err := ch.QueueDeclare(queue, true, false, false, false, amqp.Table{"x-queue-type": "quorum"}); err != nil {
		t.Fatalf("declaring queue: %v", err)
	}
	t.Cleanup(func() { _, _ = ch.QueueDelete(queue, false, false, false) })

	proxied, proxy := testenv.ProxyURL(t, url)
	w := writer.NewRabbit(writer.RabbitConfig{
		URL:        proxied,
		RoutingKey: queue,
		Queue:      queue,
		Channels:   8,
	})
	return &brokerFixture{
		gate:   &proxy.Gate,
		client: serve(t, w),
		messages: func(t *testing.T, want int) []message {
			t.Helper()
			return drainQueue(t, ch, queue, want)
		},
	}
}

// drainQueue consumes every message of queue: it checks the broker's count,
// then reads them all.
func drainQueue(t *testing.T, ch *amqp.Channel, queue string, want int) []message {
	t.Helper()
	var depth int
	testenv.Eventually(t, 10*time.Second, func() error {
		q, err := ch.QueueDeclarePassive(queue, true, false, false, false, nil)
		if err != nil {
			return err
		}
		if depth = q.Messages; depth < want {
			return fmt.Errorf("%d messages", depth)
		}
		return nil
	}, "queue %s to hold %d messages", queue, want)

	deliveries, err := ch.Consume(queue, "", true, false, false, false, nil)
	if err != nil {
		t.Fatalf("consuming %s: %v", queue, err)
	}
	out := make([]message, 0, depth)
	for len(out) < depth {
		select {
		case d := <-deliveries:
			msg := message{messageID: d.MessageId, contentType: d.ContentType}
			if err := json.Unmarshal(d.Body, &msg.report); err != nil {
				t.Fatalf("message %s is not a report: %v", d.MessageId, err)
			}
			if d.DeliveryMode != amqp.Persistent {
				t.Fatalf("message %s is not persistent", d.MessageId)
			}
			out = append(out, msg)
		case <-time.After(10 * time.Second):
			t.Fatalf("read %d of %d messages", len(out), depth)
		}
	}
	return out
}
