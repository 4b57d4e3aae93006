package manifest

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	eventingduckv1 "knative.dev/eventing/pkg/apis/duck/v1"
	duckv1 "knative.dev/pkg/apis/duck/v1"
)

// KafkaSource (sources.knative.dev/v1) as eventing-kafka-broker defines it.
type KafkaSource struct {
	Metadata Meta `json:"metadata"`
	Spec     struct {
		BootstrapServers []string                     `json:"bootstrapServers"`
		Topics           []string                     `json:"topics"`
		ConsumerGroup    string                       `json:"consumerGroup"`
		Consumers        *int32                       `json:"consumers,omitempty"`
		InitialOffset    string                       `json:"initialOffset,omitempty"`
		Ordering         string                       `json:"ordering,omitempty"`
		Delivery         *eventingduckv1.DeliverySpec `json:"delivery,omitempty"`
		Sink             duckv1.Destination           `json:"sink"`
	} `json:"spec"`
}

// RabbitmqSource (sources.knative.dev/v1alpha1) as eventing-rabbitmq defines it.
type RabbitmqSource struct {
	Metadata Meta `json:"metadata"`
	Spec     struct {
		ClusterReference struct {
			Name      string `json:"name"`
			Namespace string `json:"namespace,omitempty"`
		} `json:"rabbitmqClusterReference"`
		Resources struct {
			QueueName    string `json:"queueName"`
			ExchangeName string `json:"exchangeName,omitempty"`
			Vhost        string `json:"vhost,omitempty"`
			Parallelism  *int   `json:"parallelism,omitempty"`
			Predeclared  bool   `json:"predeclared,omitempty"`
		} `json:"rabbitmqResourcesConfig"`
		Delivery *eventingduckv1.DeliverySpec `json:"delivery,omitempty"`
		Sink     duckv1.Destination           `json:"sink"`
	} `json:"spec"`
}

// The annotations of a RabbitmqSource that set its receive adapter's
// resources (eventing-rabbitmq pkg/utils/resource_requirements.go).
const (
	RabbitCPURequestAnnotation    = "rabbitmq.eventing.knative.dev/cpu-request"
	RabbitCPULimitAnnotation      = "rabbitmq.eventing.knative.dev/cpu-limit"
	RabbitMemoryRequestAnnotation = "rabbitmq.eventing.knative.dev/memory-request"
	RabbitMemoryLimitAnnotation   = "rabbitmq.eventing.knative.dev/memory-limit"
)

// AdapterResources are the resources of the source's receive adapter, as
// eventing-rabbitmq's GetResourceRequirements reads them from the
// annotations (its module is not served here, so this follows it): each a
// quantity, a request no more than its limit.
func (s *RabbitmqSource) AdapterResources() (corev1.ResourceRequirements, error) {
	r := corev1.ResourceRequirements{Requests: corev1.ResourceList{}, Limits: corev1.ResourceList{}}
	for _, a := range []struct {
		annotation string
		list       corev1.ResourceList
		name       corev1.ResourceName
	}{
		{RabbitCPURequestAnnotation, r.Requests, corev1.ResourceCPU}, {RabbitCPULimitAnnotation, r.Limits, corev1.ResourceCPU},
		{RabbitMemoryRequestAnnotation, r.Requests, corev1.ResourceMemory}, {RabbitMemoryLimitAnnotation, r.Limits, corev1.ResourceMemory},
	} {
		value, ok := s.Metadata.Annotations[a.annotation]
		if !ok {
			continue
		}
		q, err := resource.ParseQuantity(value)
		if err != nil {
			return r, fmt.Errorf("metadata.annotations.%s: %w", a.annotation, err)
		}
		a.list[a.name] = q
	}
	for _, name := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		req, hasReq := r.Requests[name]
		limit, hasLimit := r.Limits[name]
		if hasReq && hasLimit && req.Cmp(limit) > 0 {
			return r, fmt.Errorf("metadata.annotations: the %s request must be less than or equal to its limit", name)
		}
	}
	return r, nil
}
