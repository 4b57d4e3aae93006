// Package eventing is Knative Eventing's data plane on one machine, read from
// the manifests: a Broker with the Kafka broker's semantics (202 once an
// event is appended to its topic), each Trigger a consumer group of that
// topic filtered with Knative's eventfilter, the KafkaSource and the
// RabbitmqSource; every delivery, retry and dead letter goes through
// Knative's own kncloudevents Dispatcher with the DeliverySpec's RetryConfig.
package eventing
