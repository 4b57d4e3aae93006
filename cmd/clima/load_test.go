package main

import (
	"testing"
	"time"

	"github.com/clima-dev/clima/internal/manifest"
	"github.com/clima-dev/clima/internal/testenv"
)

// TestStopTimeoutOutlastsIngest: when Locust stops it lets the requests in
// flight finish for defaultStopTimeout; ingest answers each within its
// SINK_TIMEOUT (it gives up on the Broker then), so no request is killed
// unanswered by a stop on time.
func TestStopTimeoutOutlastsIngest(t *testing.T) {
	values, _ := manifest.Env(testenv.Manifests(t).Service("ingest"))
	sink, err := time.ParseDuration(values["SINK_TIMEOUT"])
	if err != nil {
		t.Fatalf("ingest's SINK_TIMEOUT: %v", err)
	}
	if defaultStopTimeout <= sink {
		t.Errorf("Locust's stop timeout (%s) is not longer than ingest's SINK_TIMEOUT (%s)", defaultStopTimeout, sink)
	}
}
