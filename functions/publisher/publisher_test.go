package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/clima-dev/clima/events"
	"github.com/clima-dev/clima/internal/fnruntime"
	"github.com/clima-dev/clima/internal/testenv"
	"github.com/clima-dev/clima/internal/writer"
)

// pipeline is the publisher wired to both real writers over real brokers:
// the embedded Kafka and the RabbitMQ server.
type pipeline struct {
	url         string
	kafkaBroker string
	rabbitGate  *testenv.Gate
	checkQueue  func(t *testing.T, want int) []testenv.Message
}

const topic = "clima-topic"

func startPipeline(t *testing.T) *pipeline {
	t.Helper()
	cluster := testenv.StartKafka(t, topic, 2, nil)
	kafkaAddr := testenv.ServeWriter(t, writer.NewKafka(writer.KafkaConfig{Brokers: cluster.ListenAddrs(), Topic: topic}), 2*time.Second)

	rabbitURL := testenv.RabbitURL(t)
	ch := testenv.RabbitChannel(t, rabbitURL)
	queue := testenv.DeclareQueue(t, ch)
	proxied, proxy := testenv.ProxyURL(t, rabbitURL)
	rabbitAddr := testenv.ServeWriter(t, writer.NewRabbit(writer.RabbitConfig{URL: proxied, RoutingKey: queue, Queue: queue}), 2*time.Second)

	env := testenv.Env(map[string]string{"KAFKA_WRITER_ADDR": kafkaAddr, "RABBIT_WRITER_ADDR": rabbitAddr, "WRITERS_TIMEOUT": "5s"})
	fn, err := build(context.Background(), env, fnruntime.NewLogger("publisher-test"))
	if err != nil || env.Err() != nil {
		t.Fatalf("building publisher: %v %v", err, env.Err())
	}
	t.Cleanup(func() { _ = fn.Close(context.Background()) })
	return &pipeline{
		url:         testenv.ServeFunction(t, fn, fnruntime.NewLogger("publisher-test")),
		kafkaBroker: cluster.ListenAddrs()[0],
		rabbitGate:  &proxy.Gate,
		checkQueue:  func(t *testing.T, want int) []testenv.Message { return testenv.QueueMessages(t, ch, queue, want) },
	}
}

func validatedEvent(t *testing.T, reports []events.Report) testenv.Event {
	t.Helper()
	data, err := json.Marshal(reports)
	if err != nil {
		t.Fatal(err)
	}
	return testenv.Event{ID: reports[0].ID, Source: events.SourceIngest, Type: events.TypeValidated, ContentType: "application/json", Data: data}
}

func TestPublishesOneMessagePerCountryToEachBroker(t *testing.T) {
	p := startPipeline(t)
	reports := testenv.Reports("fan-out", 25) // over 8 countries
	resp := testenv.PostEvent(t, p.url, validatedEvent(t, reports))
	if resp.Status != http.StatusOK || len(resp.Body) != 0 {
		t.Fatalf("%d %q, want 200 with an empty body", resp.Status, resp.Body)
	}
	for name, got := range map[string][]testenv.Message{
		"kafka":    testenv.KafkaMessages(t, p.kafkaBroker, topic, 2),
		"rabbitmq": p.checkQueue(t, len(reports)),
	} {
		ids := map[string]bool{}
		for _, r := range testenv.ReportsOf(got) {
			ids[r.ID] = true
		}
		if len(got) != len(testenv.Countries) || len(testenv.ReportsOf(got)) != len(reports) || len(ids) != len(reports) {
			t.Errorf("%s holds %d messages with %d reports (%d distinct), want one per country (%d) with the %d reports once",
				name, len(got), len(testenv.ReportsOf(got)), len(ids), len(testenv.Countries), len(reports))
		}
	}
}

// Concurrent events are coalesced into shared writer calls: each report
// still lands exactly once on each broker, and every event is answered.
func TestConcurrentEventsEachLandOnce(t *testing.T) {
	p := startPipeline(t)
	const events, perEvent = 200, 5
	statuses := make(chan int, events)
	for i := range events {
		go func() {
			resp, err := testenv.SendEvent(p.url, validatedEvent(t, testenv.Reports(fmt.Sprintf("concurrent-%d", i), perEvent)))
			if err != nil {
				t.Error(err)
			}
			statuses <- resp.Status
		}()
	}
	for range events {
		if status := <-statuses; status != http.StatusOK {
			t.Fatalf("an event was answered %d, want 200", status)
		}
	}
	for name, got := range map[string][]testenv.Message{
		"kafka":    testenv.KafkaMessages(t, p.kafkaBroker, topic, 2),
		"rabbitmq": p.checkQueue(t, events*perEvent),
	} {
		ids := map[string]bool{}
		for _, r := range testenv.ReportsOf(got) {
			ids[r.ID] = true
		}
		if n := len(testenv.ReportsOf(got)); n != events*perEvent || len(ids) != events*perEvent {
			t.Errorf("%s holds %d reports (%d distinct) in %d messages, want exactly %d", name, n, len(ids), len(got), events*perEvent)
		}
	}
}

func TestOneWriterFailingIsRetryable(t *testing.T) {
	p := startPipeline(t)
	p.rabbitGate.Down()
	resp := testenv.PostEvent(t, p.url, validatedEvent(t, testenv.Reports("half-down", 3)))
	if resp.Status != http.StatusServiceUnavailable {
		t.Fatalf("with RabbitMQ down: %d %s, want 503, which Triggers retry", resp.Status, resp.Body)
	}
	var body struct{ Error string }
	if err := json.Unmarshal(resp.Body, &body); err != nil || body.Error == "" {
		t.Fatalf("refusal %q is not a JSON error", resp.Body)
	}

	p.rabbitGate.Up()
	testenv.Eventually(t, 20*time.Second, func() error {
		if resp := testenv.PostEvent(t, p.url, validatedEvent(t, testenv.Reports("half-down", 3))); resp.Status != http.StatusOK {
			return &statusError{resp}
		}
		return nil
	}, "the retry to succeed once RabbitMQ is back")
	if got := p.checkQueue(t, 3); len(got) != 3 {
		t.Fatalf("RabbitMQ holds %d messages after the retry, want 3", len(got))
	}
}

func TestRefusesWhatIsNotAValidatedBatch(t *testing.T) {
	p := startPipeline(t)
	bad := validatedEvent(t, testenv.Reports("bad", 1))
	bad.Data = []byte(`[{"id":"x","description":"x","country":"GT","weather":"foggy","accepted_at":"2026-01-01T00:00:00Z"}]`)
	if resp := testenv.PostEvent(t, p.url, bad); resp.Status != http.StatusBadRequest {
		t.Fatalf("invalid batch: %d %s, want 400", resp.Status, resp.Body)
	}
	other := validatedEvent(t, testenv.Reports("other", 1))
	other.Type = events.TypeReported
	if resp := testenv.PostEvent(t, p.url, other); resp.Status != http.StatusBadRequest {
		t.Fatalf("wrong type: %d %s, want 400", resp.Status, resp.Body)
	}
}

type statusError struct{ resp testenv.Response }

func (e *statusError) Error() string {
	return http.StatusText(e.resp.Status) + ": " + string(e.resp.Body)
}
