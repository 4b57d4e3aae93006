package eventing

import (
	"testing"

	"github.com/segmentio/kafka-go"
)

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
