package serving

import (
	"strings"
	"sync/atomic"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	servingv1 "knative.dev/serving/pkg/apis/serving/v1"

	"github.com/clima-dev/clima/internal/testenv"
)

// scaled is a Service's autoscaler driven with a scripted load, its
// replicas becoming ready the moment they are wanted.
type scaled struct {
	a        *autoscaler
	probe    *loadProbe
	replicas atomic.Int32
	seen     []Decision
}

func newScaled(t *testing.T, annotations map[string]string) *scaled {
	t.Helper()
	svc := &servingv1.Service{ObjectMeta: metav1.ObjectMeta{Name: "fn", Namespace: "clima"}}
	svc.Spec.Template.Annotations = annotations
	// A panic window of 3 s: one of 1 s (10 % of 6 s) often holds no
	// scrape, as the collector scrapes once a second.
	cfg, err := AutoscalerConfig(map[string]string{"stable-window": "6s", "panic-window-percentage": "50", "scale-to-zero-grace-period": "1s"})
	if err != nil {
		t.Fatal(err)
	}
	s := &scaled{probe: newLoadProbe(time.Now())}
	if s.a, err = newAutoscaler(svc, cfg, s.probe, func() int { return int(s.replicas.Load()) }, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.a.close)
	s.replicas.Store(s.a.initialScale())
	return s
}

func (s *scaled) tick(now time.Time) {
	d := s.a.decide(now)
	s.replicas.Store(d.Desired)
	s.seen = append(s.seen, d)
}

// TestScaleBounds drives three Services with 500 requests in flight (50 ×
// their target of 10) for 5 s, then none for 15 s: max-scale caps the one,
// min-scale keeps the other at 1, and the unbounded one scales to zero.
func TestScaleBounds(t *testing.T) {
	base := map[string]string{"autoscaling.knative.dev/target": "10", "autoscaling.knative.dev/target-utilization-percentage": "100"}
	with := func(k, v string) map[string]string {
		m := map[string]string{k: v}
		for bk, bv := range base {
			m[bk] = bv
		}
		return m
	}
	capped := newScaled(t, with("autoscaling.knative.dev/max-scale", "3"))
	kept := newScaled(t, with("autoscaling.knative.dev/min-scale", "1"))
	free := newScaled(t, base)
	all := []*scaled{capped, kept, free}

	start := time.Now()
	for _, s := range all {
		for range 500 {
			s.probe.begin(start)
		}
	}
	for now := range time.Tick(500 * time.Millisecond) {
		elapsed := now.Sub(start)
		if elapsed > 5*time.Second && capped.probe.inFlight > 0 {
			for _, s := range all {
				for range 500 {
					s.probe.end(now)
				}
			}
		}
		for _, s := range all {
			s.tick(now)
		}
		if elapsed > 20*time.Second {
			break
		}
	}

	peak := func(s *scaled) int32 {
		var p int32
		for _, d := range s.seen {
			p = max(p, d.Desired)
		}
		return p
	}
	if p := peak(capped); p != 3 {
		t.Errorf("max-scale 3: peaked at %d replicas, want exactly 3", p)
	}
	for _, d := range kept.seen {
		if d.Desired < 1 {
			t.Fatalf("min-scale 1: went to %d replicas at %s", d.Desired, d.Time.Sub(start))
		}
	}
	if p := peak(free); p <= 3 {
		t.Errorf("without bounds: peaked at %d replicas, want more than 3 under 50× its target", p)
	}
	if last := free.seen[len(free.seen)-1]; last.Desired != 0 {
		t.Errorf("without min-scale: %d replicas 15 s after the load, want 0 (window 6 s, grace 1 s)", last.Desired)
	}
	panicked := false
	for _, d := range capped.seen {
		panicked = panicked || d.Panicking
	}
	if !panicked {
		t.Errorf("500 in flight for 1 replica never put the KPA in panic mode: %+v", capped.seen)
	}
}

// TestReplayKPA replays a recorded run of ingest's autoscaler through a
// fresh KPA built from ingest's manifest: a recording the KPA agrees with
// replays clean, and a tick recorded with another decision is named.
func TestReplayKPA(t *testing.T) {
	ingest := testenv.Manifests(t).Service("ingest")
	cfg, err := AutoscalerConfig(nil)
	if err != nil {
		t.Fatal(err)
	}
	// ingest's target: 100 in flight × 70 % utilisation = 70 per replica.
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	recorded := []Decision{
		{Time: t0, KPA: -1},
		{Time: t0.Add(2 * time.Second), Stable: 140, Panic: 140, Ready: 1, KPA: 2},
		{Time: t0.Add(4 * time.Second), Stable: 150, Panic: 350, Ready: 2, KPA: 5},
		{Time: t0.Add(6 * time.Second), Stable: 200, Panic: 420, Ready: 5, KPA: 6},
	}
	a, err := newAutoscaler(ingest, cfg, newLoadProbe(t0), func() int { return 0 }, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer a.close()
	if a.spec.TargetValue != 70 || a.spec.StableWindow != cfg.StableWindow {
		t.Fatalf("the KPA's spec: target %v, stable window %s; want ingest's 70 and the config's %s", a.spec.TargetValue, a.spec.StableWindow, cfg.StableWindow)
	}
	if m := a.replay(recorded); len(m) != 0 {
		t.Fatalf("a recording the KPA agrees with: %v", m)
	}
	recorded[2].KPA = 3
	m := a.replay(recorded)
	if len(m) != 1 || !strings.Contains(m[0], "tick 2 (00:00:04): for stable 150.00, panic 350.00, 2 ready the KPA decides 5; recorded 3") {
		t.Fatalf("mismatches %q, want tick 2 named", m)
	}
}
