package derive

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	"knative.dev/serving/pkg/queue/readiness"
)

// The variables through which Knative hands queue-proxy the readiness
// probes it runs against the user containers, and whether there are
// several (pkg/reconciler/revision/resources/queue.go).
const (
	servingReadinessProbeEnv = "SERVING_READINESS_PROBE"
	multiContainerProbesEnv  = "ENABLE_MULTI_CONTAINER_PROBES"
)

// ProbeErrors checks every probe of a pod as the API server and the
// kubelet will: one handler each, and its port a number in 1–65535 or the
// name of one of the container's ports. Kubernetes' own validation of a
// probe (k8s.io/kubernetes pkg/apis/core/validation, validateHandler and
// ValidatePortNumOrName) is not importable beside Knative's k8s.io
// versions, so this applies the same rules with apimachinery's port
// checks. The readiness probes queue-proxy runs for the user container are
// checked too, against the user container's ports.
func ProbeErrors(pod *corev1.PodSpec) []error {
	var errs []error
	for _, c := range pod.Containers {
		for _, p := range []struct {
			name  string
			probe *corev1.Probe
		}{{"livenessProbe", c.LivenessProbe}, {"readinessProbe", c.ReadinessProbe}, {"startupProbe", c.StartupProbe}} {
			if err := probeError(p.probe, c); err != nil {
				errs = append(errs, fmt.Errorf("container %s: %s: %w", c.Name, p.name, err))
			}
		}
		env := map[string]string{}
		for _, e := range c.Env {
			env[e.Name] = e.Value
		}
		encoded, ok := env[servingReadinessProbeEnv]
		if !ok || encoded == "" {
			continue
		}
		// Decoded as queue-proxy decodes it.
		probes, err := readiness.DecodeProbes(encoded, env[multiContainerProbesEnv] == "true")
		if err != nil {
			errs = append(errs, fmt.Errorf("container %s: %s: %w", c.Name, servingReadinessProbeEnv, err))
			continue
		}
		for i, probe := range probes {
			if err := probeError(probe, userContainer(pod, i)); err != nil {
				errs = append(errs, fmt.Errorf("container %s: %s[%d], the readiness probe it runs for container %s: %w",
					c.Name, servingReadinessProbeEnv, i, userContainer(pod, i).Name, err))
			}
		}
	}
	return errs
}

// userContainer is the i-th container that is not queue-proxy, the one
// the i-th entry of SERVING_READINESS_PROBE probes.
func userContainer(pod *corev1.PodSpec, i int) corev1.Container {
	n := 0
	for _, c := range pod.Containers {
		if c.Name == queueProxyName {
			continue
		}
		if n == i {
			return c
		}
		n++
	}
	return corev1.Container{Name: fmt.Sprintf("#%d (none)", i)}
}

// queueProxyName is the container Knative adds beside the user's.
const queueProxyName = "queue-proxy"

func probeError(p *corev1.Probe, c corev1.Container) error {
	if p == nil {
		return nil
	}
	var handlers []string
	var port intstr.IntOrString
	var portField string
	if h := p.HTTPGet; h != nil {
		handlers, port, portField = append(handlers, "httpGet"), h.Port, "httpGet.port"
	}
	if h := p.TCPSocket; h != nil {
		handlers, port, portField = append(handlers, "tcpSocket"), h.Port, "tcpSocket.port"
	}
	if h := p.GRPC; h != nil {
		handlers, port, portField = append(handlers, "grpc"), intstr.FromInt32(h.Port), "grpc.port"
	}
	if p.Exec != nil {
		handlers = append(handlers, "exec")
	}
	switch {
	case len(handlers) != 1:
		return fmt.Errorf("%d handlers (%s), want exactly one", len(handlers), strings.Join(handlers, ", "))
	case portField == "":
		return nil
	case port.Type == intstr.String:
		if msgs := validation.IsValidPortName(port.StrVal); len(msgs) > 0 {
			return fmt.Errorf("%s %q: %s", portField, port.StrVal, strings.Join(msgs, "; "))
		}
		for _, cp := range c.Ports {
			if cp.Name == port.StrVal {
				return nil
			}
		}
		return fmt.Errorf("%s %q names no port of the container", portField, port.StrVal)
	}
	if msgs := validation.IsValidPortNum(port.IntValue()); len(msgs) > 0 {
		return fmt.Errorf("%s %d: %s", portField, port.IntValue(), strings.Join(msgs, "; "))
	}
	return nil
}
