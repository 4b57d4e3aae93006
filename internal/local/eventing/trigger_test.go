package eventing

import (
	"context"
	"net/http"
	"testing"

	"github.com/cloudevents/sdk-go/v2/event"
	eventingv1 "knative.dev/eventing/pkg/apis/eventing/v1"
)

// TestTriggerFilters runs each filter dialect a Trigger can carry through
// the Trigger's dispatch: a record of the Broker's topic reaches the
// subscriber only when it passes.
func TestTriggerFilters(t *testing.T) {
	reported := withType(testEvent(), "clima.weather.reported")
	validated := withType(testEvent(), "clima.weather.validated")
	validated.SetExtension("country", "GT")
	exact := func(attrs map[string]string) eventingv1.SubscriptionsAPIFilter {
		return eventingv1.SubscriptionsAPIFilter{Exact: attrs}
	}
	for _, tc := range []struct {
		name   string
		spec   eventingv1.TriggerSpec
		passes map[*event.Event]bool
	}{
		{"none", eventingv1.TriggerSpec{}, map[*event.Event]bool{reported: true, validated: true}},
		{"filter.attributes", eventingv1.TriggerSpec{Filter: &eventingv1.TriggerFilter{Attributes: eventingv1.TriggerFilterAttributes{"type": "clima.weather.validated"}}},
			map[*event.Event]bool{reported: false, validated: true}},
		{"exact", eventingv1.TriggerSpec{Filters: []eventingv1.SubscriptionsAPIFilter{exact(map[string]string{"type": "clima.weather.reported"})}},
			map[*event.Event]bool{reported: true, validated: false}},
		{"prefix", eventingv1.TriggerSpec{Filters: []eventingv1.SubscriptionsAPIFilter{{Prefix: map[string]string{"type": "clima.weather.val"}}}},
			map[*event.Event]bool{reported: false, validated: true}},
		{"suffix", eventingv1.TriggerSpec{Filters: []eventingv1.SubscriptionsAPIFilter{{Suffix: map[string]string{"type": ".reported"}}}},
			map[*event.Event]bool{reported: true, validated: false}},
		{"all", eventingv1.TriggerSpec{Filters: []eventingv1.SubscriptionsAPIFilter{{All: []eventingv1.SubscriptionsAPIFilter{
			{Prefix: map[string]string{"type": "clima."}}, exact(map[string]string{"country": "GT"})}}}},
			map[*event.Event]bool{reported: false, validated: true}},
		{"any", eventingv1.TriggerSpec{Filters: []eventingv1.SubscriptionsAPIFilter{{Any: []eventingv1.SubscriptionsAPIFilter{
			exact(map[string]string{"type": "clima.weather.reported"}), exact(map[string]string{"country": "GT"})}}}},
			map[*event.Event]bool{reported: true, validated: true}},
		{"not", eventingv1.TriggerSpec{Filters: []eventingv1.SubscriptionsAPIFilter{{Not: &eventingv1.SubscriptionsAPIFilter{Suffix: map[string]string{"type": ".reported"}}}}},
			map[*event.Event]bool{reported: false, validated: true}},
		{"cesql", eventingv1.TriggerSpec{Filters: []eventingv1.SubscriptionsAPIFilter{{CESQL: "type = 'clima.weather.validated' AND country = 'GT'"}}},
			map[*event.Event]bool{reported: false, validated: true}},
		// Knative's precedence: filters, when set, win over filter.attributes.
		{"filters over filter.attributes", eventingv1.TriggerSpec{
			Filter:  &eventingv1.TriggerFilter{Attributes: eventingv1.TriggerFilterAttributes{"type": "clima.weather.validated"}},
			Filters: []eventingv1.SubscriptionsAPIFilter{exact(map[string]string{"type": "clima.weather.reported"})}},
			map[*event.Event]bool{reported: true, validated: false}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for e, want := range tc.passes {
				sub := newRecorder(t, status(http.StatusAccepted, ""))
				p, _ := newPolicy(nil, nil, nil, releaseFlags(t))
				tr := &trigger{name: tc.name, filter: triggerFilter(tc.spec), subscriber: sub.address(), policy: p,
					broker: &broker{log: quiet}, sender: newSender(nil, quiet)}
				if !tr.handle(context.Background(), eventRecord(e)) {
					t.Fatalf("%s: the trigger did not finish", e.Type())
				}
				if got := len(sub.requests()) == 1; got != want {
					t.Errorf("%s (country %v): delivered %v, want %v", e.Type(), e.Extensions()["country"], got, want)
				}
				if got := tr.filtered.Load() == 1; got == want {
					t.Errorf("%s: counted as filtered %v, want %v", e.Type(), got, !want)
				}
			}
		})
	}
}

func withType(e *event.Event, typ string) *event.Event {
	e.SetType(typ)
	return e
}
