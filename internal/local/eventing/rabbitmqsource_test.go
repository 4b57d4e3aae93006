package eventing

import (
	"context"
	"net/http"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"k8s.io/utils/ptr"
	eventingduckv1 "knative.dev/eventing/pkg/apis/duck/v1"
)

// TestRabbitmqSourceEvent: a message becomes the CloudEvent the
// RabbitmqSource sends; a 500 is not retried, a 503 is.
func TestRabbitmqSourceEvent(t *testing.T) {
	sink := newRecorder(t, status(http.StatusServiceUnavailable, ""), status(http.StatusAccepted, ""))
	p, err := newPolicy(&eventingduckv1.DeliverySpec{Retry: ptr.To[int32](3)}, nil, rabbitCheckRetry, releaseFlags(t))
	if err != nil {
		t.Fatal(err)
	}
	s := &rabbitSource{namespace: "clima", name: "clima-rabbitmq-source", queue: "clima-queue", sink: sink.address(), policy: p,
		sender: newSender(nil, quiet), log: quiet}
	sent := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	if !s.handle(context.Background(), amqp.Delivery{MessageId: "g-0123", ContentType: "application/json", Timestamp: sent, Body: []byte(`[{"id":"r"}]`)}) {
		t.Fatal("the source did not finish")
	}
	got := sink.requests()
	if len(got) != 2 {
		t.Fatalf("%d attempts, want 2 (a 503, then the 202)", len(got))
	}
	for k, want := range map[string]string{
		"Ce-Id": "g-0123", "Ce-Subject": "g-0123", "Ce-Type": "dev.knative.rabbitmq.event",
		"Ce-Source": "/apis/v1/namespaces/clima/rabbitmqsources/clima-rabbitmq-source#clima-queue",
		"Ce-Time":   "2026-12-01T00:00:00Z", "Content-Type": "application/json",
	} {
		if h := got[1].Header.Get(k); h != want {
			t.Errorf("%s: %q, want %q", k, h, want)
		}
	}
	if d := s.status(); d.Delivered != 1 || d.Failed != 0 {
		t.Fatalf("counted %+v, want 1 delivered", d)
	}

	refusing := newRecorder(t, status(http.StatusInternalServerError, ""))
	s.sink = refusing.address()
	s.handle(context.Background(), amqp.Delivery{MessageId: "g-0456", Body: []byte(`[]`)})
	if n := len(refusing.requests()); n != 1 {
		t.Fatalf("a 500 was tried %d times, want once (the RabbitmqSource does not retry it)", n)
	}
	if d := s.status(); d.Failed != 1 {
		t.Fatalf("counted %+v, want 1 failed", d)
	}
}
