package fnruntime

import (
	"testing"
	"time"

	"github.com/clima-dev/clima/internal/manifest"
	"github.com/clima-dev/clima/internal/manifest/derive"
)

// TestDrainFitsTheGracePeriod: after SIGTERM a function drains for up to
// drainTimeout, then closes its clients for up to closeTimeout; the kubelet
// kills the pod after its terminationGracePeriodSeconds, which Knative
// sets to the revision's timeoutSeconds (resources.BuildPodSpec). Every
// Deployment Knative makes of the manifests leaves room for both, so a
// drain is never cut short by the kill (a necessary bound: queue-proxy's
// own drain runs first, in the preStop hook, and leaves little in flight).
func TestDrainFitsTheGracePeriod(t *testing.T) {
	const root = "../.." // the repository, from this package's folder
	set, err := manifest.Load(root, manifest.Dirs...)
	if err != nil {
		t.Fatal(err)
	}
	serving, err := derive.NewServing(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, svc := range set.Services {
		d, err := serving.Deployment(svc)
		if err != nil {
			t.Fatal(err)
		}
		grace := d.Spec.Template.Spec.TerminationGracePeriodSeconds
		if grace == nil {
			t.Fatalf("Service %s: Knative sets no grace period", svc.Name)
		}
		if limit := time.Duration(*grace) * time.Second; drainTimeout+closeTimeout > limit {
			t.Errorf("Service %s: a drain (%s) and a close (%s) outlast the pod's grace period (%s, its timeoutSeconds)",
				svc.Name, drainTimeout, closeTimeout, limit)
		}
	}
}
