package eventing

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"knative.dev/pkg/apis"
	duckv1 "knative.dev/pkg/apis/duck/v1"

	"github.com/clima-dev/clima/internal/testenv"
)

// servicesAt resolves a destination the way the runtime does, to a
// Service's address, here http://<name>.test.
func servicesAt(d *duckv1.Destination) (duckv1.Addressable, error) {
	if d.Ref == nil {
		return duckv1.Addressable{}, errors.New("no ref")
	}
	u, err := apis.ParseURL("http://" + d.Ref.Name + ".test")
	return duckv1.Addressable{URL: u}, err
}

func testPlane(t *testing.T, cfg Config) *Plane {
	t.Helper()
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, l := range p.loops {
			_ = l.reader.Close()
		}
		p.Close()
	})
	return p
}

func manifestConfig(t *testing.T) Config {
	return Config{Set: testenv.Manifests(t), IngressURL: "http://127.0.0.1:1", Kafka: []string{"127.0.0.1:1"},
		RabbitURL: "amqp://127.0.0.1:1/", RabbitPrefix: "test-", Features: releaseFlags(t), Resolve: servicesAt, Log: quiet}
}

// TestPlaneOfTheManifests: the data plane New makes of the manifests has
// their Broker, Triggers and sources, each delivering to what its manifest
// names with its DeliverySpec, on the Kafka broker's topic and group names.
func TestPlaneOfTheManifests(t *testing.T) {
	p := testPlane(t, manifestConfig(t))

	if got := p.BrokerAddresses(); !slices.Equal(got, []string{"http://127.0.0.1:1/clima/default"}) {
		t.Errorf("broker addresses %q", got)
	}
	if b := p.brokers["clima/default"]; b == nil || b.topic != "knative-broker-clima-default" {
		t.Fatalf("broker clima/default: %+v", b)
	}
	triggers := map[string]*trigger{}
	for _, tr := range p.triggers {
		triggers[tr.name] = tr
	}
	for name, subscriber := range map[string]string{"ingest": "http://ingest.test", "publisher": "http://publisher.test"} {
		tr := triggers[name]
		if tr == nil || tr.subscriber.URL.String() != subscriber || tr.policy.deadLetter == nil ||
			tr.policy.deadLetter.URL.String() != "http://dead-letter.test" || tr.broker != p.brokers["clima/default"] {
			t.Errorf("trigger %s: %+v, want subscriber %s and dead letters to dead-letter", name, tr, subscriber)
		}
	}
	if got := triggers["publisher"].policy.retry.RetryMax; got != 10 {
		t.Errorf("trigger publisher retries %d times, want its delivery's 10", got)
	}
	if len(p.kSources) != 1 || p.kSources[0].sink.URL.String() != "http://kafka-consumer.test" || p.kSources[0].policy.deadLetter == nil {
		t.Errorf("kafka sources %+v, want one into kafka-consumer with a dead-letter sink", p.kSources)
	}
	if len(p.rSources) != 1 || p.rSources[0].queue != "test-clima-queue" || p.rSources[0].parallelism != 100 ||
		p.rSources[0].sink.URL.String() != "http://rabbit-consumer.test" || p.rSources[0].policy.deadLetter != nil {
		t.Errorf("rabbitmq sources %+v, want one of the prefixed clima-queue, 100 workers, into rabbit-consumer, no dead-letter sink", p.rSources)
	}
	if len(p.loops) != 3 { // two Triggers, one KafkaSource
		t.Errorf("%d Kafka loops, want 3", len(p.loops))
	}
	var names []string
	for name := range p.Status() {
		names = append(names, name)
	}
	slices.Sort(names)
	if want := []string{"kafkasource/clima-kafka-source", "rabbitmqsource/clima-rabbitmq-source", "trigger/ingest", "trigger/publisher"}; !slices.Equal(names, want) {
		t.Errorf("status of %q, want %q", names, want)
	}

	groups := ConsumerGroups(manifestConfig(t).Set)
	if got := groups["knative-broker-clima-default"]; !slices.Equal(got, []string{"knative-trigger-clima-ingest", "knative-trigger-clima-publisher"}) {
		t.Errorf("the broker topic's groups %q", got)
	}
	if got := groups["clima-topic"]; !slices.Equal(got, []string{"clima-kafka-consumer"}) {
		t.Errorf("clima-topic's groups %q", got)
	}
	topics := map[string]int{}
	for _, tp := range Topics(manifestConfig(t).Set) {
		topics[tp.Name] = tp.Partitions
	}
	if topics["clima-topic"] != 2 || topics["knative-broker-clima-default"] < 1 || len(topics) != 2 {
		t.Errorf("topics %v, want clima-topic (2 partitions) and the Broker's", topics)
	}
}

// TestPlaneRoutesByPath: the ingress answers a path that names no Broker
// 404 with a JSON error, as Knative's.
func TestPlaneRoutesByPath(t *testing.T) {
	p := testPlane(t, manifestConfig(t))
	rec := httptest.NewRecorder()
	p.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/clima/other", strings.NewReader("{}")))
	var body map[string]string
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || rec.Code != http.StatusNotFound ||
		body["error"] != "no broker at /clima/other; the brokers are at /<namespace>/<name>" {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
}

// TestPlaneRefusesWhatItCannotWire: a Trigger of a Broker that does not
// exist, and a destination that does not resolve, are errors naming them.
func TestPlaneRefusesWhatItCannotWire(t *testing.T) {
	cfg := manifestConfig(t)
	cfg.Set.Triggers[0].Spec.Broker = "missing"
	if _, err := New(cfg); err == nil || !strings.Contains(err.Error(), "Broker missing does not exist") {
		t.Errorf("a Trigger of a missing Broker: %v", err)
	}
	cfg = manifestConfig(t)
	cfg.Resolve = func(*duckv1.Destination) (duckv1.Addressable, error) {
		return duckv1.Addressable{}, errors.New("nowhere")
	}
	if _, err := New(cfg); err == nil || !strings.Contains(err.Error(), "nowhere") {
		t.Errorf("an unresolvable destination: %v", err)
	}
}
