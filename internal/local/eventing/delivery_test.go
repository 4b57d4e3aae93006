package eventing

import (
	"context"
	"encoding/base64"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"k8s.io/utils/ptr"
	eventingduckv1 "knative.dev/eventing/pkg/apis/duck/v1"
	"knative.dev/eventing/pkg/apis/feature"
	"knative.dev/pkg/apis"
	duckv1 "knative.dev/pkg/apis/duck/v1"

	"github.com/clima-dev/clima/internal/manifest"
)

func TestRabbitCheckRetry(t *testing.T) {
	for status, want := range map[int]bool{
		400: false, 404: true, 408: false, 409: false, 413: true, 425: true, 429: true, 500: false, 502: true, 503: true, 504: true,
	} {
		if got, _ := rabbitCheckRetry(context.Background(), &http.Response{StatusCode: status}, nil); got != want {
			t.Errorf("status %d retried = %v, want %v", status, got, want)
		}
	}
	if got, _ := rabbitCheckRetry(context.Background(), nil, errors.New("connection refused")); !got {
		t.Error("a transport error is not retried")
	}
}

// releaseFlags are the Eventing release's feature flags.
func releaseFlags(t *testing.T) feature.Flags {
	t.Helper()
	flags, err := manifest.ReleaseFeatures("")
	if err != nil {
		t.Fatalf("the release's feature flags: %v", err)
	}
	return flags
}

// TestPolicyHonoursTheReleaseFlags: the release enables delivery-timeout
// and disables delivery-retryafter.
func TestPolicyHonoursTheReleaseFlags(t *testing.T) {
	p, err := newPolicy(&eventingduckv1.DeliverySpec{Retry: ptr.To[int32](1), Timeout: ptr.To("PT30S"), RetryAfterMax: ptr.To("PT5S")}, nil, nil, releaseFlags(t))
	if err != nil {
		t.Fatal(err)
	}
	if p.retry.RequestTimeout != 30*time.Second || p.retry.RetryAfterMaxDuration != nil || p.retry.RetryMax != 1 {
		t.Fatalf("retry config %+v: want a 30 s timeout, no Retry-After, 1 retry", p.retry)
	}
}

// recorder is a destination that answers each request with the next of
// its answers (the last one repeats) and records when each came.
type recorder struct {
	mu      sync.Mutex
	answers []func(http.ResponseWriter)
	got     []*http.Request
	at      []time.Time
	srv     *httptest.Server
}

func newRecorder(t *testing.T, answers ...func(http.ResponseWriter)) *recorder {
	r := &recorder{answers: answers}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		n := len(r.got)
		r.got = append(r.got, req)
		r.at = append(r.at, time.Now())
		answer := r.answers[min(n, len(r.answers)-1)]
		r.mu.Unlock()
		answer(w)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *recorder) address() duckv1.Addressable {
	return duckv1.Addressable{URL: apis.HTTP(r.srv.Listener.Addr().String())}
}

func (r *recorder) requests() []*http.Request {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.got)
}

func status(code int, body string) func(http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		w.WriteHeader(code)
		_, _ = w.Write([]byte(body))
	}
}

func testEvent() *event.Event {
	e := event.New()
	e.SetID("e-1")
	e.SetSource("/test")
	e.SetType("clima.weather.reported")
	_ = e.SetData("application/json", map[string]string{"country": "GT"})
	return &e
}

// TestRetriesFollowTheDeliverySpec delivers to a destination that fails
// three times: the retries are as many as the spec says, and each waits at
// least what kncloudevents computes from it, linear and exponential.
func TestRetriesFollowTheDeliverySpec(t *testing.T) {
	for _, backoff := range []eventingduckv1.BackoffPolicyType{eventingduckv1.BackoffPolicyLinear, eventingduckv1.BackoffPolicyExponential} {
		t.Run(string(backoff), func(t *testing.T) {
			dest := newRecorder(t, status(503, ""), status(503, ""), status(503, ""), status(202, ""))
			p, err := newPolicy(&eventingduckv1.DeliverySpec{Retry: ptr.To[int32](3), BackoffPolicy: &backoff, BackoffDelay: ptr.To("PT0.1S")}, nil, nil, releaseFlags(t))
			if err != nil {
				t.Fatal(err)
			}
			s := newSender(nil, slog.New(slog.DiscardHandler))
			if got := s.deliver(context.Background(), dest.address(), testEvent(), p, nil); got != delivered {
				t.Fatalf("outcome %v, want delivered", got)
			}
			if n := len(dest.requests()); n != 4 {
				t.Fatalf("%d attempts, want 4 (1 + 3 retries)", n)
			}
			var waits time.Duration
			for i := 1; i < len(dest.at); i++ {
				want := p.retry.Backoff(i-1, nil)
				waits += want
				if gap := dest.at[i].Sub(dest.at[i-1]); gap < want {
					t.Errorf("retry %d came after %v, before the back-off of %v", i, gap, want)
				}
			}
			// PT0.1S: linear waits 0, 0.1 and 0.2 s; exponential 0.1, 0.2 and 0.4 s.
			if want := map[eventingduckv1.BackoffPolicyType]time.Duration{"linear": 300 * time.Millisecond, "exponential": 700 * time.Millisecond}[backoff]; waits != want {
				t.Errorf("the back-offs add up to %v, want %v", waits, want)
			}
		})
	}
	t.Run("a refusal is not retried", func(t *testing.T) {
		dest := newRecorder(t, status(400, `{"error":"bad"}`))
		p, _ := newPolicy(&eventingduckv1.DeliverySpec{Retry: ptr.To[int32](3)}, nil, nil, releaseFlags(t))
		if got := newSender(nil, slog.New(slog.DiscardHandler)).deliver(context.Background(), dest.address(), testEvent(), p, nil); got != failed || len(dest.requests()) != 1 {
			t.Fatalf("outcome %v after %d attempts, want failed after 1", got, len(dest.requests()))
		}
	})
}

// TestDeadLettersCarryTheKnativeErrorExtensions refuses an event and reads
// what the dead-letter sink got.
func TestDeadLettersCarryTheKnativeErrorExtensions(t *testing.T) {
	dest := newRecorder(t, status(400, `{"error":"weather \"foggy\" is not one of rainy, cloudy, sunny"}`))
	sink := newRecorder(t, status(202, ""))
	deadLetter := sink.address()
	p, _ := newPolicy(&eventingduckv1.DeliverySpec{Retry: ptr.To[int32](2)}, &deadLetter, nil, releaseFlags(t))
	if got := newSender(nil, slog.New(slog.DiscardHandler)).deliver(context.Background(), dest.address(), testEvent(), p, nil); got != deadLettered {
		t.Fatalf("outcome %v, want dead-lettered", got)
	}
	got := sink.requests()
	if len(got) != 1 {
		t.Fatalf("the sink got %d requests, want 1", len(got))
	}
	h := got[0].Header
	want := map[string]string{
		"Ce-Id": "e-1", "Ce-Type": "clima.weather.reported",
		"Ce-Knativeerrordest": dest.srv.URL, "Ce-Knativeerrorcode": "400",
		"Ce-Knativeerrordata": base64.StdEncoding.EncodeToString([]byte(`{"error":"weather \"foggy\" is not one of rainy, cloudy, sunny"}`)),
	}
	for k, v := range want {
		if h.Get(k) != v {
			t.Errorf("%s: %q, want %q", k, h.Get(k), v)
		}
	}
}

// TestRepliesGoToTheBroker: an event in a 2xx answer is appended to the
// Broker's topic, as the Kafka broker's dispatcher produces it; a body that
// is not an event is dropped, as Knative's dispatcher drops it.
func TestRepliesGoToTheBroker(t *testing.T) {
	ctx := context.Background()
	k, b := testBroker(t)
	topic := b.topic

	replying := newRecorder(t, func(w http.ResponseWriter) {
		w.Header().Set("Ce-Specversion", "1.0")
		w.Header().Set("Ce-Id", "r-1")
		w.Header().Set("Ce-Source", "/ingest")
		w.Header().Set("Ce-Type", "clima.weather.validated")
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`[]`))
	})
	plain := newRecorder(t, status(200, "ok"))
	p, _ := newPolicy(nil, nil, nil, releaseFlags(t))
	s := newSender(nil, quiet)
	for _, dest := range []*recorder{replying, plain} {
		if got := s.deliver(ctx, dest.address(), testEvent(), p, b); got != delivered {
			t.Fatalf("outcome %v, want delivered", got)
		}
	}
	if got := k.Pending(topic, "nobody"); got != 1 {
		t.Fatalf("the Broker's topic holds %d records, want the one reply", got)
	}
	m := firstRecord(t, k, topic)
	if e, err := recordAsCloudEvent(m, recordHeaders(m)); err != nil || e.ID() != "r-1" || e.Type() != "clima.weather.validated" {
		t.Fatalf("the record is %v (%v), want the reply r-1", e, err)
	}
}
