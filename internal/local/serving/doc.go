// Package serving is Knative Serving on one machine: a Service is a local
// endpoint that holds requests while no replica is ready, as the activator
// does, in front of replicas that are processes of the function's binary,
// as many as Knative's own KPA (knative.dev/serving/pkg/autoscaler/scaling)
// decides from the load the endpoint measures, from and to zero.
package serving
