package local

import (
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"

	"knative.dev/pkg/apis"
	duckv1 "knative.dev/pkg/apis/duck/v1"

	"github.com/clima-dev/clima/internal/local/eventing"
)

// kafkaPending says, per topic and consumer group, how many records the
// reloaded embedded Kafka holds that the group has not committed: what
// the Triggers and the KafkaSource will deliver now.
func (r *runtime) kafkaPending(dir string) []string {
	lines := []string{"Kafka data reloaded from " + dir + "; records not yet delivered, per topic and consumer group:"}
	groups := eventing.ConsumerGroups(r.set)
	for _, topic := range slices.Sorted(maps.Keys(groups)) {
		for _, group := range groups[topic] {
			lines = append(lines, fmt.Sprintf("  %-30s %-40s %d", topic, group, r.kafka.Pending(topic, group)))
		}
	}
	return lines
}

// resolve gives where a destination is here: a Service's local endpoint
// (which holds a request until a replica is ready, as the activator does),
// or the URI as it is.
func (r *runtime) resolve(d *duckv1.Destination) (duckv1.Addressable, error) {
	if d == nil {
		return duckv1.Addressable{}, errors.New("no destination")
	}
	if d.Ref != nil {
		if d.Ref.Kind != "Service" {
			return duckv1.Addressable{}, fmt.Errorf("destination %s %s: only Knative Services are supported locally", d.Ref.Kind, d.Ref.Name)
		}
		svc, ok := r.services[d.Ref.Name]
		if !ok {
			return duckv1.Addressable{}, fmt.Errorf("destination Service %s does not exist", d.Ref.Name)
		}
		u, err := apis.ParseURL(svc.URL())
		if err != nil {
			return duckv1.Addressable{}, err
		}
		if d.URI != nil {
			u.Path = d.URI.Path
		}
		return duckv1.Addressable{URL: u}, nil
	}
	if d.URI != nil {
		return duckv1.Addressable{URL: d.URI}, nil
	}
	return duckv1.Addressable{}, errors.New("destination has neither ref nor uri")
}

// serveBrokers is the Brokers' ingress. The listener opens before the data
// plane is made, as its address is the Brokers', and is served after.
func (r *runtime) serveBrokers(w http.ResponseWriter, req *http.Request) {
	r.plane.ServeHTTP(w, req)
}
