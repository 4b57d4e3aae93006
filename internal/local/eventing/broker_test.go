package eventing

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/segmentio/kafka-go"
	"knative.dev/pkg/apis"
	duckv1 "knative.dev/pkg/apis/duck/v1"

	"github.com/clima-dev/clima/events"
	"github.com/clima-dev/clima/internal/local/infra"
)

// testBroker is the Broker clima/default on an embedded Kafka of its own,
// its topic of one partition; its ingress address answers nothing.
func testBroker(t *testing.T) (*infra.Kafka, *broker) {
	t.Helper()
	topic := brokerTopic("clima", "default")
	k, err := infra.StartKafka(context.Background(), infra.KafkaConfig{Storage: infra.KafkaMemory, MaxMessageBytes: events.MaxEventBytes}, []infra.Topic{{Name: topic, Partitions: 1}}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(k.Close)
	b := &broker{namespace: "clima", name: "default", address: duckv1.Addressable{URL: apis.HTTP("127.0.0.1:1")}, topic: topic,
		writer: newBrokerWriter(k.Brokers(), topic), log: quiet}
	t.Cleanup(func() { _ = b.writer.Close() })
	return k, b
}

// firstRecord reads the first record of partition 0 of topic.
func firstRecord(t *testing.T, k *infra.Kafka, topic string) kafka.Message {
	t.Helper()
	conn, err := kafka.DialLeader(context.Background(), "tcp", k.Brokers()[0], topic, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	m, err := conn.ReadMessage(1 << 20)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestBrokerIngress: a valid CloudEvent is answered 202 once it is a
// binary-mode record of the Broker's topic; anything else is refused with
// a JSON error and appends nothing.
func TestBrokerIngress(t *testing.T) {
	k, b := testBroker(t)
	topic := b.topic

	post := func(method string, header map[string]string, body string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(method, "/clima/default", strings.NewReader(body))
		for k, v := range header {
			req.Header.Set(k, v)
		}
		rec := httptest.NewRecorder()
		b.ServeHTTP(rec, req)
		return rec
	}
	valid := map[string]string{"Ce-Specversion": "1.0", "Ce-Id": "e-1", "Ce-Source": "/test", "Ce-Type": "clima.weather.reported",
		"Ce-Country": "GT", "Content-Type": "application/json"}
	for _, tc := range []struct {
		name, method string
		header       map[string]string
		status       int
		err          string
	}{
		{"GET", http.MethodGet, nil, http.StatusMethodNotAllowed, "the broker ingress takes POST"},
		{"no CloudEvent", http.MethodPost, map[string]string{"Content-Type": "application/json"}, http.StatusBadRequest, "invalid CloudEvent: "},
		{"no type", http.MethodPost, map[string]string{"Ce-Specversion": "1.0", "Ce-Id": "e-1", "Ce-Source": "/test"}, http.StatusBadRequest, "invalid CloudEvent: "},
	} {
		rec := post(tc.method, tc.header, `{"country":"GT"}`)
		var refusal struct{ Error string }
		if rec.Code != tc.status || json.Unmarshal(rec.Body.Bytes(), &refusal) != nil || !strings.HasPrefix(refusal.Error, tc.err) {
			t.Errorf("%s: %d %s, want %d with an error starting %q", tc.name, rec.Code, rec.Body, tc.status, tc.err)
		}
	}
	if got := k.Pending(topic, "nobody"); got != 0 {
		t.Fatalf("refused requests appended %d records", got)
	}

	if rec := post(http.MethodPost, valid, `{"country":"GT"}`); rec.Code != http.StatusAccepted {
		t.Fatalf("a valid event: %d %s, want 202", rec.Code, rec.Body)
	}
	m := firstRecord(t, k, topic)
	h := recordHeaders(m)
	if string(m.Key) != "e-1" || string(m.Value) != `{"country":"GT"}` || h["ce_type"] != "clima.weather.reported" ||
		h["ce_country"] != "GT" || h["content-type"] != "application/json" {
		t.Fatalf("record key %q, value %q, headers %v", m.Key, m.Value, h)
	}
}
