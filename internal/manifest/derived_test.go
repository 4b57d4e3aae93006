package manifest_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"knative.dev/networking/pkg/apis/networking"
	netv1alpha1 "knative.dev/networking/pkg/apis/networking/v1alpha1"
	"knative.dev/pkg/apis"
	servingv1 "knative.dev/serving/pkg/apis/serving/v1"

	"github.com/clima-dev/clima/internal/manifest/derive"
)

// TestDeploymentsKnativeMakes builds, with Knative Serving's own reconciler
// code and the release's ConfigMaps, the Deployment of each Service's first
// Revision — what a cluster runs, not what the Service says — and checks it
// as the API server and the kubelet will: every probe's port valid, and
// clima's container still non-root on a read-only root. (TestReferencesResolve
// checks its env against what the function reads.)
func TestDeploymentsKnativeMakes(t *testing.T) {
	root := repoRoot(t)
	set := load(t)
	serving, err := derive.NewServing(root)
	if err != nil {
		t.Fatalf("loading Knative Serving's release config: %v", err)
	}
	if len(set.Services) != 7 {
		t.Fatalf("%d Services, want the seven functions", len(set.Services))
	}
	for _, svc := range set.Services {
		d, err := serving.Deployment(svc)
		if err != nil {
			t.Errorf("Service %s: Knative makes no Deployment: %v", svc.Name, err)
			continue
		}
		for _, msg := range deploymentProblems(svc, d) {
			t.Error(msg)
		}
		t.Logf("Service %s: Deployment %s, containers %v", svc.Name, d.Name, containerNames(d))
	}

	t.Run("a gRPC liveness probe without a port is refused, though Knative validates it", func(t *testing.T) {
		svc := set.Service("kafka-writer").DeepCopy()
		svc.Spec.Template.Spec.Containers[0].LivenessProbe.GRPC = &corev1.GRPCAction{}
		// As the webhook does: defaults, then validation on create.
		validated := svc.DeepCopy()
		validated.SetDefaults(context.Background())
		if err := validated.Validate(apis.WithinCreate(context.Background())); err != nil {
			t.Fatalf("Knative's Validate refuses it (%v): then a cluster would too, and this test is moot", err)
		}
		d, err := serving.Deployment(svc)
		if err != nil {
			t.Fatal(err)
		}
		problems := deploymentProblems(svc, d)
		want := "Service kafka-writer: container kafka-writer: livenessProbe: grpc.port 0"
		if !slices.ContainsFunc(problems, func(p string) bool { return strings.HasPrefix(p, want) }) {
			t.Fatalf("problems %q, want one that starts %q", problems, want)
		}
		t.Logf("refused as: %q", problems)
	})
}

// deploymentProblems are what the API server or the kubelet would refuse
// in the Deployment Knative made of svc, each naming the Service.
func deploymentProblems(svc *servingv1.Service, d *appsv1.Deployment) []string {
	var problems []string
	for _, err := range derive.ProbeErrors(&d.Spec.Template.Spec) {
		problems = append(problems, fmt.Sprintf("Service %s: %v", svc.Name, err))
	}
	for _, c := range d.Spec.Template.Spec.Containers {
		if c.Name != svc.Spec.Template.Spec.Containers[0].Name {
			continue
		}
		sc := c.SecurityContext
		if sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
			problems = append(problems, fmt.Sprintf("Service %s: container %s may run as root or write its root filesystem", svc.Name, c.Name))
		}
		// The kubelet probes the container itself: the one port it serves.
		port := c.Ports[0].ContainerPort
		for _, p := range []struct {
			name  string
			probe *corev1.Probe
		}{{"livenessProbe", c.LivenessProbe}, {"startupProbe", c.StartupProbe}} {
			if p.probe != nil && probePort(p.probe) != port {
				problems = append(problems, fmt.Sprintf("Service %s: container %s: %s on port %d, but the container serves %d",
					svc.Name, c.Name, p.name, probePort(p.probe), port))
			}
		}
	}
	return problems
}

func probePort(p *corev1.Probe) int32 {
	switch {
	case p.HTTPGet != nil:
		return p.HTTPGet.Port.IntVal
	case p.TCPSocket != nil:
		return p.TCPSocket.Port.IntVal
	case p.GRPC != nil:
		return p.GRPC.Port
	}
	return -1
}

// climaContainer is the Service's own container in its Deployment.
func climaContainer(t *testing.T, svc *servingv1.Service, d *appsv1.Deployment) corev1.Container {
	t.Helper()
	for _, c := range d.Spec.Template.Spec.Containers {
		if c.Name == svc.Spec.Template.Spec.Containers[0].Name {
			return c
		}
	}
	t.Fatalf("Service %s: its container is not in the Deployment (%v)", svc.Name, containerNames(d))
	return corev1.Container{}
}

func containerNames(d *appsv1.Deployment) []string {
	var names []string
	for _, c := range d.Spec.Template.Spec.Containers {
		names = append(names, c.Name)
	}
	return names
}

// TestOnlyIngestIsPublic builds, with Knative Serving's own route code, the
// Ingress of each Service under the config-network and config-domain that
// make cluster-deps patches in: ingest alone gets a rule of visibility
// ExternalIP, the one Kourier's public gateway serves, at the host the
// README sends to; every other Service is cluster-local. Without the
// domain (the release's config-domain), no Service would get one.
func TestOnlyIngestIsPublic(t *testing.T) {
	root := repoRoot(t)
	set := load(t)
	patches := clusterDepsPatches(t, "knative-serving")
	serving, err := derive.NewServing(root, patches...)
	if err != nil {
		t.Fatal(err)
	}
	publicHost := ""
	for _, svc := range set.Services {
		ing, err := serving.Ingress(svc)
		if err != nil {
			t.Fatalf("Service %s: Knative makes no Ingress: %v", svc.Name, err)
		}
		if class := ing.Annotations[networking.IngressClassAnnotationKey]; class != kourierIngressClass {
			t.Errorf("Service %s: Ingress class %q, want Kourier's %q", svc.Name, class, kourierIngressClass)
		}
		public := derive.Hosts(ing, netv1alpha1.IngressVisibilityExternalIP)
		switch {
		case svc.Name == "ingest" && len(public) == 1:
			publicHost = public[0]
		case svc.Name == "ingest":
			t.Errorf("Service ingest: public hosts %q, want one", public)
		case len(public) > 0:
			t.Errorf("Service %s is public at %q: only ingest may be", svc.Name, public)
		}
	}
	t.Logf("ingest's public host: %s", publicHost)
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"-H 'Host: " + publicHost + "'", "-ingest-host " + publicHost} {
		if publicHost == "" || !strings.Contains(string(readme), want) {
			t.Errorf("the README does not send to ingest's public host with %q", want)
		}
	}

	t.Run("without a domain no Service is public", func(t *testing.T) {
		var network []derive.Patch
		for _, p := range patches {
			if p.ConfigMap != "config-domain" {
				network = append(network, p)
			}
		}
		serving, err := derive.NewServing(root, network...)
		if err != nil {
			t.Fatal(err)
		}
		ing, err := serving.Ingress(set.Service("ingest"))
		if err != nil {
			t.Fatal(err)
		}
		if public := derive.Hosts(ing, netv1alpha1.IngressVisibilityExternalIP); len(public) > 0 {
			t.Fatalf("ingest is public at %q under the release's config-domain: then make cluster-deps need not set a domain", public)
		}
		t.Logf("cluster-local only: %q", derive.Hosts(ing, netv1alpha1.IngressVisibilityClusterLocal))
	})
}

// kourierIngressClass is the class of the ingress make cluster-deps
// installs, Kourier's.
const kourierIngressClass = "kourier.ingress.networking.knative.dev"
