package local

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"regexp"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	eventingduckv1 "knative.dev/eventing/pkg/apis/duck/v1"
)

// policy is a Knative DeliverySpec made concrete: how often to retry, how
// long to wait before each retry, and where what fails goes.
type policy struct {
	retries    int
	delay      time.Duration
	exponent   bool // exponential (delay·2^n) or linear (delay·n) back-off
	timeout    time.Duration
	deadLetter *destination // nil when the sender has none
	// retryable says which answers are worth another attempt; Knative's
	// senders and the RabbitmqSource's differ.
	retryable func(status int) bool
}

// knativeRetryable is the rule of the Broker's dispatcher and the
// KafkaSource: 5xx, 404, 408, 409 and 429 are retried, other 4xx are not.
func knativeRetryable(status int) bool {
	return status >= 500 || status == 404 || status == 408 || status == 409 || status == 429
}

// rabbitRetryable is the RabbitmqSource's rule: not 500.
func rabbitRetryable(status int) bool {
	switch status {
	case 404, 413, 425, 429, 502, 503, 504:
		return true
	}
	return false
}

func newPolicy(d *eventingduckv1.DeliverySpec, deadLetter *destination, retryable func(int) bool) (policy, error) {
	p := policy{retries: 10, delay: 200 * time.Millisecond, exponent: true, timeout: 60 * time.Second, deadLetter: deadLetter, retryable: retryable}
	if d == nil {
		return p, nil
	}
	if d.Retry != nil {
		p.retries = int(*d.Retry)
	}
	if d.BackoffPolicy != nil {
		p.exponent = *d.BackoffPolicy == eventingduckv1.BackoffPolicyExponential
	}
	if d.BackoffDelay != nil {
		delay, err := isoDuration(*d.BackoffDelay)
		if err != nil {
			return p, err
		}
		p.delay = delay
	}
	if d.Timeout != nil {
		timeout, err := isoDuration(*d.Timeout)
		if err != nil {
			return p, err
		}
		p.timeout = timeout
	}
	return p, nil
}

func (p policy) backoff(retry int) time.Duration {
	if p.exponent {
		return time.Duration(float64(p.delay) * math.Pow(2, float64(retry-1)))
	}
	return p.delay * time.Duration(retry)
}

var isoPattern = regexp.MustCompile(`^PT(?:([\d.]+)H)?(?:([\d.]+)M)?(?:([\d.]+)S)?$`)

// isoDuration reads the ISO-8601 durations Knative uses (PT0.5S, PT1M).
func isoDuration(s string) (time.Duration, error) {
	m := isoPattern.FindStringSubmatch(s)
	if m == nil || s == "PT" {
		return 0, fmt.Errorf("duration %q is not of the form PT1H2M3.5S", s)
	}
	var d time.Duration
	for i, unit := range []time.Duration{time.Hour, time.Minute, time.Second} {
		if m[i+1] == "" {
			continue
		}
		v, err := strconv.ParseFloat(m[i+1], 64)
		if err != nil {
			return 0, err
		}
		d += time.Duration(v * float64(unit))
	}
	return d, nil
}

// outcome is how a delivery ended.
type outcome int

const (
	delivered    outcome = iota // a 2xx
	deadLettered                // refused or retries spent, then taken by the dead-letter sink
	failed                      // refused or retries spent, and no dead-letter sink took it
)

// sender delivers CloudEvents in binary mode over HTTP.
type sender struct {
	client *http.Client
	log    *slog.Logger
	// duplicate makes every delivery happen twice, as an at-least-once
	// platform may: a fault to prove the consumers idempotent.
	duplicate atomic.Bool
}

// copies is how many times each event is delivered.
func (s *sender) copies() int {
	if s.duplicate.Load() {
		return 2
	}
	return 1
}

// attempt is the answer of one delivery attempt.
type attempt struct {
	status int
	body   []byte
	reply  *event.Event
	err    error
}

// deliver sends e to target under p. It returns the reply event, if the
// subscriber answered with one, and how the delivery ended. It gives up
// early only when ctx ends.
func (s *sender) deliver(ctx context.Context, target destination, e *event.Event, p policy) (*event.Event, outcome) {
	var last attempt
	for try := 0; try <= p.retries; try++ {
		if try > 0 {
			select {
			case <-ctx.Done():
				return nil, failed
			case <-time.After(p.backoff(try)):
			}
		}
		last = s.send(ctx, target, e, p.timeout)
		if last.err == nil && last.status/100 == 2 {
			return last.reply, delivered
		}
		if last.err == nil && !p.retryable(last.status) {
			break
		}
		if ctx.Err() != nil {
			return nil, failed
		}
	}
	if p.deadLetter == nil {
		s.log.Warn("delivery failed", "id", e.ID(), "type", e.Type(), "target", target.url, "status", last.status, "error", last.err)
		return nil, failed
	}
	dead := e.Clone()
	dead.SetExtension("knativeerrordest", target.url)
	if last.err == nil {
		dead.SetExtension("knativeerrorcode", strconv.Itoa(last.status))
		if len(last.body) > 0 {
			dead.SetExtension("knativeerrordata", base64.StdEncoding.EncodeToString(last.body[:min(len(last.body), 1024)]))
		}
	} else {
		dead.SetExtension("knativeerrorcode", "0")
	}
	deadPolicy := p
	deadPolicy.deadLetter = nil
	if _, result := s.deliver(ctx, *p.deadLetter, &dead, deadPolicy); result != delivered {
		s.log.Error("dead-letter sink did not take the event", "id", e.ID(), "type", e.Type())
		return nil, failed
	}
	return nil, deadLettered
}

// destination is where a dispatcher delivers: any URL, or a local Service,
// whose ready process then gets the request directly, as a pod does once
// Knative's activator is out of the path.
type destination struct {
	url  string   // the Service's endpoint and path, or any URL
	svc  *service // nil for a plain URL
	path string   // the path on the Service
}

// open returns where one request goes, and what to call once its answer
// is read. For a Service it waits for a ready process (a cold start).
func (d destination) open(ctx context.Context) (string, func(), error) {
	if d.svc == nil {
		return d.url, func() {}, nil
	}
	p, err := d.svc.acquire(ctx)
	if err != nil {
		return "", nil, err
	}
	return "http://" + p.addr + d.path, func() { d.svc.release(p) }, nil
}

// send makes one attempt.
func (s *sender) send(ctx context.Context, target destination, e *event.Event, timeout time.Duration) attempt {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	url, done, err := target.open(ctx)
	if err != nil {
		return attempt{err: err}
	}
	defer done()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, nil)
	if err != nil {
		return attempt{err: err}
	}
	if err := cehttp.WriteRequest(ctx, binding.ToMessage(e), req); err != nil {
		return attempt{err: err}
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return attempt{err: err}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return attempt{err: err}
	}
	a := attempt{status: resp.StatusCode, body: body}
	if resp.StatusCode/100 != 2 || (len(body) == 0 && resp.Header.Get("ce-specversion") == "") {
		return a
	}
	// A 2xx with a body must be a CloudEvent; anything else is answered 502
	// by Knative's dispatcher, and retried.
	resp.Body = io.NopCloser(bytes.NewReader(body))
	reply, err := binding.ToEvent(ctx, cehttp.NewMessageFromHttpResponse(resp))
	if err != nil || reply.Validate() != nil {
		a.status = http.StatusBadGateway
		a.err = nil
		if err == nil {
			err = reply.Validate()
		}
		a.body = []byte(fmt.Sprintf("2xx answer is not a CloudEvent: %v", err))
		return a
	}
	a.reply = reply
	return a
}
