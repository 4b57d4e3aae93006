package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"knative.dev/serving/pkg/apis/autoscaling"

	"github.com/clima-dev/clima/internal/bench"
	"github.com/clima-dev/clima/internal/local"
	"github.com/clima-dev/clima/internal/local/serving"
	"github.com/clima-dev/clima/internal/manifest"
)

// TestAutoscaling puts ingest under 5 × its target concurrency for 20 s
// and watches Knative's KPA in clima dev scale it out and back to zero.
func TestAutoscaling(t *testing.T) {
	d := startDev(t)
	set, err := manifest.Load(d.root, manifest.Dirs...)
	if err != nil {
		t.Fatal(err)
	}
	svc := set.Service("ingest")
	target, err := strconv.Atoi(svc.Spec.Template.Annotations[autoscaling.TargetAnnotationKey])
	if err != nil {
		t.Fatalf("ingest's target annotation: %v", err)
	}
	stores, err := bench.OpenStores(context.Background(), d.endpoints.Redis, d.endpoints.Valkey)
	if err != nil {
		t.Fatal(err)
	}
	defer stores.Close()

	// The load: 5 × target clients, each posting one report at a time.
	clients := 5 * target
	var accepted, refused atomic.Int64
	start := time.Now()
	stop := start.Add(20 * time.Second)
	var wg sync.WaitGroup
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients}, Timeout: time.Minute}
	for c := range clients {
		wg.Go(func() {
			for i := 0; time.Now().Before(stop); i++ {
				body, _ := json.Marshal(report(i))
				req, _ := http.NewRequest(http.MethodPost, d.endpoints.Services["ingest"]+"/input", bytes.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Idempotency-Key", fmt.Sprintf("autoscale-%d-%d", c, i))
				resp, err := client.Do(req)
				if err == nil {
					resp.Body.Close()
				}
				if err != nil || resp.StatusCode != http.StatusAccepted {
					refused.Add(1)
					continue
				}
				accepted.Add(1)
			}
		})
	}
	peak := map[string]int{}
	loaded := make(chan struct{})
	go func() { wg.Wait(); close(loaded) }()
	for watching := true; watching; {
		select {
		case <-loaded:
			watching = false
		case <-time.After(500 * time.Millisecond):
		}
		for name, s := range d.status(t).Services {
			peak[name] = max(peak[name], s.Ready)
		}
	}
	t.Logf("%d clients for 20 s: %d reports accepted, %d refused; peak replicas %v", clients, accepted.Load(), refused.Load(), peak)
	if refused.Load() > 0 {
		t.Errorf("%d requests were refused", refused.Load())
	}
	if peak["ingest"] < 3 {
		t.Errorf("ingest peaked at %d replicas under %d × its target, want at least 3", peak["ingest"], clients/target)
	}

	sent := make(chan struct{})
	close(sent)
	if err := stores.Await(context.Background(), start, accepted.Load, sent, 3*time.Minute); err != nil {
		t.Fatal(err)
	}
	t.Logf("all %d reports in both stores %s after the first", accepted.Load(), time.Since(start).Round(time.Second))

	waitZero := time.Now()
	awaitReplicas(t, d, "ingest", 0, time.Minute)
	t.Logf("ingest back at zero %s after the stores held everything", time.Since(waitZero).Round(time.Second))

	decisions := autoscalingHistory(t, d)
	for _, s := range set.Services {
		maxScale, _ := strconv.Atoi(s.Spec.Template.Annotations[autoscaling.MaxScaleAnnotationKey])
		for _, dec := range decisions[s.Name] {
			if maxScale > 0 && (int(dec.Desired) > maxScale || dec.Ready > maxScale) {
				t.Errorf("%s: max-scale %d exceeded: %+v", s.Name, maxScale, dec)
			}
		}
		if maxScale > 0 && peak[s.Name] > maxScale {
			t.Errorf("%s: %d replicas ready, max-scale is %d", s.Name, peak[s.Name], maxScale)
		}
	}
	// Knative's KPA, fed what clima dev recorded tick by tick, decides
	// exactly what clima dev decided.
	if len(decisions["ingest"]) < 10 {
		t.Fatalf("only %d decisions recorded", len(decisions["ingest"]))
	}
	replays := getJSON[map[string]local.Replay](t, d, "/autoscaling/replay")
	if got := replays["ingest"]; got.Ticks < len(decisions["ingest"]) || len(got.Mismatches) > 0 {
		t.Errorf("ingest's KPA replayed: %d ticks (%d recorded before), mismatches %q", got.Ticks, len(decisions["ingest"]), got.Mismatches)
	}
	t.Logf("replayed %d ticks of ingest's autoscaler", replays["ingest"].Ticks)
}

func awaitReplicas(t *testing.T, d *devRun, service string, want int, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		st := d.status(t).Services[service]
		if len(st.PIDs) == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s still runs %d processes after %s, want %d", service, len(st.PIDs), timeout, want)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func autoscalingHistory(t *testing.T, d *devRun) map[string][]serving.Decision {
	t.Helper()
	return getJSON[map[string][]serving.Decision](t, d, "/autoscaling")
}

// getJSON decodes what clima dev answers at path of its admin address.
func getJSON[T any](t *testing.T, d *devRun, path string) T {
	t.Helper()
	resp, err := http.Get(strings.TrimSuffix(d.endpoints.Status, "/status") + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var v T
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	return v
}
