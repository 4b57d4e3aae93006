package writer_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/clima-dev/clima/events"
	"github.com/clima-dev/clima/internal/testenv"
	"github.com/clima-dev/clima/internal/writer"
)

// failTimeout is the writers' bound on one publish where a test awaits
// the failure; bulkTimeout where it publishes 10,000 reports and the bound
// is not what it tests (make test runs packages side by side, and a busy
// machine took more than 2 s for one batch).
const (
	failTimeout = 2 * time.Second
	bulkTimeout = 30 * time.Second
)

// brokerFixture is one broker with a Writer to it, served over gRPC as in
// production, and a way to read back what the broker holds.
type brokerFixture struct {
	gate   *testenv.Gate
	client *writer.Client
	// messages reads every message the broker holds, waiting for want.
	messages func(t *testing.T, want int) []testenv.Message
}

var brokers = []struct {
	name  string
	start func(t *testing.T, publishTimeout time.Duration) *brokerFixture
}{
	{"kafka", startKafka},
	{"rabbitmq", startRabbit},
}

// TestWriterContract runs one suite against both writers.
func TestWriterContract(t *testing.T) {
	for _, b := range brokers {
		t.Run(b.name, func(t *testing.T) {
			t.Run("publishes exactly one message per report", func(t *testing.T) {
				f := b.start(t, bulkTimeout)
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
					r, ok := want[m.Report.ID]
					if !ok {
						t.Fatalf("message for unknown or repeated report %q", m.Report.ID)
					}
					delete(want, m.Report.ID)
					if m.ContentType != writer.ContentType {
						t.Errorf("report %s: content type %q, want %q", r.ID, m.ContentType, writer.ContentType)
					}
					if b.name == "kafka" && m.Key != r.Country {
						t.Errorf("report %s: key %q, want its country %q", r.ID, m.Key, r.Country)
					}
					if b.name == "rabbitmq" && (m.MessageID != r.ID || !m.Persistent) {
						t.Errorf("report %s: message-id %q, persistent %v, want the report id and persistent", r.ID, m.MessageID, m.Persistent)
					}
					if !m.Report.AcceptedAt.Equal(r.AcceptedAt) || m.Report.Description != r.Description || m.Report.Weather != r.Weather {
						t.Errorf("report %s arrived as %+v, want %+v", r.ID, m.Report, r)
					}
				}
				if len(want) > 0 {
					t.Errorf("%d reports have no message", len(want))
				}
			})

			t.Run("answers Unavailable within 5s when the broker stops, and recovers", func(t *testing.T) {
				f := b.start(t, failTimeout)
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
				f := b.start(t, failTimeout)
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

func serve(t *testing.T, w writer.Writer, publishTimeout time.Duration) *writer.Client {
	t.Helper()
	client, err := writer.Dial(testenv.ServeWriter(t, w, publishTimeout))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Close() })
	return client
}

func startKafka(t *testing.T, publishTimeout time.Duration) *brokerFixture {
	const topic = "clima-topic"
	gate := &testenv.Gate{}
	cluster := testenv.StartKafka(t, topic, 2, gate)
	brokers := cluster.ListenAddrs()
	w := writer.NewKafka(writer.KafkaConfig{Brokers: brokers, Topic: topic})
	return &brokerFixture{
		gate:   gate,
		client: serve(t, w, publishTimeout),
		messages: func(t *testing.T, _ int) []testenv.Message {
			t.Helper()
			return testenv.KafkaMessages(t, brokers[0], topic, 2)
		},
	}
}

func startRabbit(t *testing.T, publishTimeout time.Duration) *brokerFixture {
	url := testenv.RabbitURL(t)
	ch := testenv.RabbitChannel(t, url)
	queue := testenv.DeclareQueue(t, ch)

	proxied, proxy := testenv.ProxyURL(t, url)
	w := writer.NewRabbit(writer.RabbitConfig{
		URL:        proxied,
		RoutingKey: queue,
		Queue:      queue,
		Channels:   8,
	})
	return &brokerFixture{
		gate:   &proxy.Gate,
		client: serve(t, w, publishTimeout),
		messages: func(t *testing.T, want int) []testenv.Message {
			t.Helper()
			return testenv.QueueMessages(t, ch, queue, want)
		},
	}
}
