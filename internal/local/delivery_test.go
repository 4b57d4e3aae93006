package local

import (
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
)

func TestISODuration(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"PT0.5S": 500 * time.Millisecond, "PT30S": 30 * time.Second, "PT1M": time.Minute,
		"PT1H2M3.5S": time.Hour + 2*time.Minute + 3500*time.Millisecond,
	} {
		if got, err := isoDuration(in); err != nil || got != want {
			t.Errorf("isoDuration(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "PT", "5s", "P1D", "PTxS"} {
		if _, err := isoDuration(bad); err == nil {
			t.Errorf("isoDuration(%q) accepted", bad)
		}
	}
}

func TestBackoff(t *testing.T) {
	exp := policy{delay: 100 * time.Millisecond, exponent: true}
	lin := policy{delay: 100 * time.Millisecond}
	for retry, want := range map[int][2]time.Duration{1: {100, 100}, 2: {200, 200}, 3: {400, 300}, 4: {800, 400}} {
		if got := exp.backoff(retry); got != want[0]*time.Millisecond {
			t.Errorf("exponential retry %d: %v, want %v", retry, got, want[0]*time.Millisecond)
		}
		if got := lin.backoff(retry); got != want[1]*time.Millisecond {
			t.Errorf("linear retry %d: %v, want %v", retry, got, want[1]*time.Millisecond)
		}
	}
}

func TestRetryableStatuses(t *testing.T) {
	for status, want := range map[int][2]bool{ // knative, rabbitmq
		400: {false, false}, 404: {true, true}, 408: {true, false}, 409: {true, false}, 413: {false, true},
		429: {true, true}, 500: {true, false}, 502: {true, true}, 503: {true, true},
	} {
		if got := [2]bool{knativeRetryable(status), rabbitRetryable(status)}; got != want {
			t.Errorf("status %d retried (knative, rabbitmq) = %v, want %v", status, got, want)
		}
	}
}

// TestKafkaSourceEvent checks the CloudEvent a record becomes, attribute by
// attribute, as the KafkaSource makes it.
func TestKafkaSourceEvent(t *testing.T) {
	src := &kafkaSource{namespace: "clima", name: "clima-kafka-source"}
	e, err := src.toEvent(kafka.Message{Topic: "clima-topic", Partition: 1, Offset: 42, Key: []byte("GT"),
		Value: []byte(`{"id":"x"}`), Headers: []kafka.Header{{Key: "content-type", Value: []byte("application/json")}, {Key: "trace-id", Value: []byte("abc")}}})
	if err != nil {
		t.Fatal(err)
	}
	for attr, want := range map[string]string{
		"id": "partition:1/offset:42", "source": "/apis/v1/namespaces/clima/kafkasources/clima-kafka-source#clima-topic",
		"type": "dev.knative.kafka.event", "subject": "partition:1#42", "datacontenttype": "application/json",
	} {
		got := map[string]string{"id": e.ID(), "source": e.Source(), "type": e.Type(), "subject": e.Subject(), "datacontenttype": e.DataContentType()}[attr]
		if got != want {
			t.Errorf("%s = %q, want %q", attr, got, want)
		}
	}
	ext := e.Extensions()
	if ext["key"] != "GT" || ext["kafkaheadertraceid"] != "abc" || string(e.Data()) != `{"id":"x"}` {
		t.Errorf("extensions %v, data %s", ext, e.Data())
	}

	// A record that is itself a CloudEvent passes through unchanged.
	ce, err := src.toEvent(kafka.Message{Value: []byte("{}"), Headers: []kafka.Header{
		{Key: "ce_specversion", Value: []byte("1.0")}, {Key: "ce_id", Value: []byte("e-1")}, {Key: "ce_source", Value: []byte("s")},
		{Key: "ce_type", Value: []byte("clima.weather.validated")}, {Key: "content-type", Value: []byte("application/json")}}})
	if err != nil || ce.ID() != "e-1" || ce.Type() != "clima.weather.validated" || ce.Source() != "s" {
		t.Fatalf("pass-through event %v (%v)", ce, err)
	}
}
