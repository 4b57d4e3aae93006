package launch

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
)

// TestPrometheusScrapesItsTargets starts Debian's Prometheus, points it at a
// target through the file it watches, awaits a scrape, reads the sample
// back with its labels, and sees the target go when the file drops it.
func TestPrometheusScrapesItsTargets(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p, err := StartPrometheus(ctx, t.TempDir(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("%v (Prometheus comes from make deps)", err)
	}
	defer p.Close()
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "# TYPE clima_test_total counter\nclima_test_total 7")
	}))
	defer target.Close()
	addr := strings.TrimPrefix(target.URL, "http://")
	if err := p.SetTargets([]TargetGroup{{Targets: []string{addr}, Labels: map[string]string{"service": "fn"}}}); err != nil {
		t.Fatal(err)
	}
	if err := p.Scraped(ctx, addr, time.Now()); err != nil {
		t.Fatal(err)
	}
	value, _, err := p.API().Query(ctx, `clima_test_total{service="fn"}`, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := value.(model.Vector); !ok || len(v) != 1 || v[0].Value != 7 || string(v[0].Metric["instance"]) != addr {
		t.Fatalf("clima_test_total{service=\"fn\"} = %v, want 7 from instance %s", value, addr)
	}
	if err := p.SetTargets(nil); err != nil {
		t.Fatal(err)
	}
	for {
		targets, err := p.API().Targets(ctx)
		if err == nil && len(targets.Active) == 0 {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("the dropped target is still active: %+v", targets.Active)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
