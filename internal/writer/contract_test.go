package writer_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"math/rand/v2"
	"slices"
	"strings"
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
			t.Run("publishes every report exactly once, one message per country group", func(t *testing.T) {
				f := b.start(t, bulkTimeout)
				reports := testenv.Reports("contract-"+b.name, 10_000)
				publishConcurrently(t, f.client, reports, 20) // 20 calls of 500 over 8 countries

				got := f.messages(t, len(reports))
				want := map[string]events.Report{}
				for _, r := range reports {
					want[r.ID] = r
				}
				for _, m := range got {
					checkMessage(t, b.name, m)
					for _, r := range m.Reports {
						w, ok := want[r.ID]
						if !ok {
							t.Fatalf("message for unknown or repeated report %q", r.ID)
						}
						delete(want, r.ID)
						if !r.AcceptedAt.Equal(w.AcceptedAt) || r.Description != w.Description || r.Weather != w.Weather || r.Country != w.Country {
							t.Errorf("report %s arrived as %+v, want %+v", r.ID, r, w)
						}
					}
				}
				if len(want) > 0 {
					t.Errorf("%d reports have no message", len(want))
				}
				if len(got) != 20*len(testenv.Countries) {
					t.Errorf("%d messages, want one per country per call (%d)", len(got), 20*len(testenv.Countries))
				}
			})

			t.Run("keeps each country's order and splits groups at the bounds", func(t *testing.T) {
				f := b.start(t, bulkTimeout)
				// GT: 2,500 short reports (split by count); MX: 700 of about
				// 1.8 kB, the longest description JSON makes (split by bytes);
				// SV: one.
				var reports []events.Report
				for i, r := range testenv.Reports("order-"+b.name, 3201) {
					switch {
					case i < 2500:
						r.Country = "GT"
					case i < 3200:
						r.Country, r.Description = "MX", strings.Repeat("<", events.MaxDescriptionChars) // "\u003c" in JSON
					default:
						r.Country = "SV"
					}
					reports = append(reports, r)
				}
				rand.New(rand.NewPCG(1, 2)).Shuffle(len(reports), func(i, j int) { // countries interleaved, ids not in order
					if reports[i].Country != reports[j].Country {
						reports[i], reports[j] = reports[j], reports[i]
					}
				})
				publish(t, f.client, reports)
				got := f.messages(t, len(reports))
				perCountry := map[string][]string{}
				messages := map[string]int{}
				for _, m := range got {
					checkMessage(t, b.name, m)
					if len(m.Reports) > events.MaxGroupReports || m.Size > writer.MaxGroupBytes {
						t.Errorf("a message of %d reports, %d bytes: over the bounds (%d, %d)", len(m.Reports), m.Size, events.MaxGroupReports, writer.MaxGroupBytes)
					}
					messages[m.Reports[0].Country]++
					for _, r := range m.Reports {
						perCountry[r.Country] = append(perCountry[r.Country], r.ID)
					}
				}
				for _, country := range []string{"GT", "MX", "SV"} {
					var want []string
					for _, r := range reports {
						if r.Country == country {
							want = append(want, r.ID)
						}
					}
					if !slices.Equal(perCountry[country], want) {
						t.Errorf("%s: %d reports arrived, want %d in the order sent", country, len(perCountry[country]), len(want))
					}
				}
				// 2,500 / 1,000 → 3; 700 × ~1.8 kB / 900 kB → 2; 1.
				if messages["GT"] != 3 || messages["MX"] != 2 || messages["SV"] != 1 {
					t.Errorf("messages per country %v, want GT 3, MX 2, SV 1", messages)
				}
				if b.name == "rabbitmq" {
					publish(t, f.client, reports) // the same reports again: the same message ids
					again := f.messages(t, len(reports))
					if ids, idsAgain := messageIDs(got), messageIDs(again); !slices.Equal(ids, idsAgain) {
						t.Errorf("a republish has message ids %v, want the first's %v", idsAgain, ids)
					}
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

// checkMessage checks what every message of a writer carries: one country,
// its key (Kafka) or its id and count (RabbitMQ), JSON.
func checkMessage(t *testing.T, broker string, m testenv.Message) {
	t.Helper()
	if len(m.Reports) == 0 {
		t.Fatal("an empty message")
	}
	country := m.Reports[0].Country
	ids := make([]string, len(m.Reports))
	for i, r := range m.Reports {
		if r.Country != country {
			t.Fatalf("a message mixes %s and %s", country, r.Country)
		}
		ids[i] = r.ID
	}
	if m.ContentType != writer.ContentType || !m.Persistent {
		t.Errorf("content type %q, persistent %v; want %q, persistent", m.ContentType, m.Persistent, writer.ContentType)
	}
	if broker == "kafka" && m.Key != country {
		t.Errorf("key %q, want the country %q", m.Key, country)
	}
	sum := sha256.Sum256([]byte(strings.Join(ids, "\n")))
	if want := "g-" + hex.EncodeToString(sum[:16]); broker == "rabbitmq" && (m.MessageID != want || m.ReportCount != len(m.Reports)) {
		t.Errorf("message-id %q with count %d, want %q (from the report ids) and %d", m.MessageID, m.ReportCount, want, len(m.Reports))
	}
}

func messageIDs(messages []testenv.Message) []string {
	ids := make([]string, len(messages))
	for i, m := range messages {
		ids[i] = m.MessageID
	}
	return ids
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
