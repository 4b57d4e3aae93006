package wire

import (
	"testing"
	"time"

	"github.com/clima-dev/clima/internal/manifest"
)

// TestStoreTimeoutFitsTheRevision: a consumer gives up on its store
// (storeTimeout) before its revision gives up on the request
// (timeoutSeconds), so a store that hangs is answered 503, which the
// source retries, not cut off by queue-proxy.
func TestStoreTimeoutFitsTheRevision(t *testing.T) {
	set, err := manifest.Load("../..", manifest.Dirs...)
	if err != nil {
		t.Fatal(err)
	}
	// The functions that wire a consumer (their main.go calls Consumer).
	for _, name := range []string{"kafka-consumer", "rabbit-consumer"} {
		svc := set.Service(name)
		limit := time.Duration(*svc.Spec.Template.Spec.TimeoutSeconds) * time.Second
		if storeTimeout >= limit {
			t.Errorf("Service %s: the store's time-out (%s) is not shorter than the revision's (%s)", svc.Name, storeTimeout, limit)
		}
	}
}
