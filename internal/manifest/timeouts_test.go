package manifest_test

import (
	"testing"
	"time"

	"knative.dev/eventing/pkg/kncloudevents"

	"github.com/clima-dev/clima/internal/manifest"
)

// TestTimeoutChain holds the manifests' time-outs in the order that lets
// each caller hear its callee's answer: a writer gives up on its broker
// before the publisher gives up on the writers, which it does before its
// Trigger gives up on it; no delivery outlasts the revision it goes to, and
// ingest gives up on the Broker before its own request times out. Each
// time-out has one home, the manifest that sets it; the ones in code are
// held against these by their own packages' tests.
func TestTimeoutChain(t *testing.T) {
	set := load(t)
	env := func(service, key string) time.Duration {
		t.Helper()
		values, _ := manifest.Env(set.Service(service))
		d, err := time.ParseDuration(values[key])
		if err != nil {
			t.Fatalf("Service %s %s: %v", service, key, err)
		}
		return d
	}
	revisionTimeout := func(service string) time.Duration {
		t.Helper()
		s := set.Service(service)
		if s == nil || s.Spec.Template.Spec.TimeoutSeconds == nil {
			t.Fatalf("Service %s sets no timeoutSeconds", service)
		}
		return time.Duration(*s.Spec.Template.Spec.TimeoutSeconds) * time.Second
	}
	before := func(shorter, longer string, a, b time.Duration) {
		t.Helper()
		if a >= b {
			t.Errorf("%s (%s) must be shorter than %s (%s)", shorter, a, longer, b)
		}
	}

	writers := env("publisher", "WRITERS_TIMEOUT")
	for _, w := range []string{"kafka-writer", "rabbit-writer"} {
		before(w+"'s PUBLISH_TIMEOUT", "publisher's WRITERS_TIMEOUT", env(w, "PUBLISH_TIMEOUT"), writers)
	}
	checked := 0
	for _, tr := range set.Triggers {
		ref := tr.Spec.Subscriber.Ref
		if ref == nil || tr.Spec.Delivery == nil || tr.Spec.Delivery.Timeout == nil {
			t.Errorf("Trigger %s: no subscriber Service or no delivery timeout", tr.Name)
			continue
		}
		// As Knative's dispatcher reads it.
		retry, err := kncloudevents.RetryConfigFromDeliverySpec(*tr.Spec.Delivery)
		if err != nil {
			t.Fatalf("Trigger %s delivery: %v", tr.Name, err)
		}
		delivery := retry.RequestTimeout
		if !(delivery <= revisionTimeout(ref.Name)) {
			t.Errorf("Trigger %s's delivery timeout (%s) outlasts Service %s's timeoutSeconds (%s)", tr.Name, delivery, ref.Name, revisionTimeout(ref.Name))
		}
		if ref.Name == "publisher" {
			before("publisher's WRITERS_TIMEOUT", "Trigger "+tr.Name+"'s delivery timeout", writers, delivery)
		}
		checked++
	}
	before("ingest's SINK_TIMEOUT", "ingest's timeoutSeconds", env("ingest", "SINK_TIMEOUT"), revisionTimeout("ingest"))
	if checked != 2 {
		t.Fatalf("checked %d Triggers, want ingest's and publisher's", checked)
	}
}
