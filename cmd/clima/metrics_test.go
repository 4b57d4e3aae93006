package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
	"github.com/redis/go-redis/v9"

	"github.com/clima-dev/clima/events"
	"github.com/clima-dev/clima/internal/dashboard/view"
	"github.com/clima-dev/clima/internal/store"
	"github.com/clima-dev/clima/internal/testenv"
)

// prometheus is the API of the run's Prometheus.
func (d *devRun) prometheus(t *testing.T) promv1.API {
	t.Helper()
	client, err := api.NewClient(api.Config{Address: d.endpoints.Prometheus})
	if err != nil {
		t.Fatal(err)
	}
	return promv1.NewAPI(client)
}

// sums runs query, a sum by one label, and returns the value of each.
func sums(ctx context.Context, prom promv1.API, query string) (map[string]float64, error) {
	value, _, err := prom.Query(ctx, query, time.Now())
	if err != nil {
		return nil, err
	}
	out := map[string]float64{}
	for _, s := range value.(model.Vector) {
		var key []string
		for _, v := range s.Metric {
			key = append(key, string(v))
		}
		out[strings.Join(key, ",")] = float64(s.Value)
	}
	return out, nil
}

// checkMetrics: after the first subtest of TestDev (7,000 reports in 2,205
// events, 200 of them sent again, 100 invalid events), Prometheus holds
// what every function and clima dev counted, exactly, scraped from each
// replica's own address, and every target answers.
func checkMetrics(t *testing.T, d *devRun) {
	prom := d.prometheus(t)
	ctx := context.Background()
	st := d.status(t)
	dispatched := func(name string) float64 {
		s := st.Dispatchers[name]
		return float64(s.Delivered + s.DeadLettered + s.Failed)
	}
	redis, err := store.ReadStats(ctx, d.redis)
	if err != nil {
		t.Fatal(err)
	}
	valkey, err := store.ReadStats(ctx, d.valkey)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]map[string]float64{
		`sum(max_over_time(clima_reports_accepted_total[10m]))`:                                                                 {"": 7200},
		`sum by (clima_broker) (max_over_time(clima_reports_published_total[10m]))`:                                             {"kafka": 7200, "rabbitmq": 7200},
		`sum by (clima_path) (max_over_time(clima_reports_stored_total[10m]))`:                                                  {"kafka": float64(redis.Total), "rabbitmq": float64(valkey.Total)},
		`sum by (clima_path) (max_over_time(clima_reports_repeated_total[10m]))`:                                                {"kafka": 200, "rabbitmq": 200},
		`sum(max_over_time(clima_dead_letters_total[10m]))`:                                                                     {"": float64(redis.DeadLetters)},
		`sum by (clima_path) (max_over_time(clima_report_latency_seconds_count[10m]))`:                                          {"kafka": 7200, "rabbitmq": 7200},
		`sum by (http_response_status_code) (max_over_time(http_server_request_duration_seconds_count{service="ingest"}[10m]))`: {"200": 2205, "400": 100},
		`sum by (messaging_destination_name) (max_over_time(kn_eventing_dispatch_duration_seconds_count{messaging_destination_name=~"trigger:.*"}[10m]))`: {
			"trigger:ingest.clima": dispatched("trigger/ingest"), "trigger:publisher.clima": dispatched("trigger/publisher")},
		`sum by (kn_source_name) (max_over_time(kn_eventing_dispatch_duration_seconds_count{kn_source_name!=""}[10m]))`: {
			"clima-kafka-source": dispatched("kafkasource/clima-kafka-source"), "clima-rabbitmq-source": dispatched("rabbitmqsource/clima-rabbitmq-source")},
	}
	// Each series' latest value (max_over_time): a replica scaled down since
	// is no longer in an instant query, but what it counted stays.
	for query, w := range want {
		testenv.Eventually(t, 30*time.Second, func() error {
			got, err := sums(ctx, prom, query)
			if err != nil {
				return err
			}
			if fmt.Sprint(got) != fmt.Sprint(w) {
				return fmt.Errorf("%v, want %v", got, w)
			}
			return nil
		}, "Prometheus to answer %s", query)
	}
	// The KPA's instruments and the pod counts, as a cluster's autoscaler
	// exports them, for every Service.
	for _, metric := range []string{"kn_revision_pods_desired", "kn_revision_pods_requested", "kn_revision_pods_count", "kn_revision_concurrency_stable"} {
		got, err := sums(ctx, prom, "count by (kn_service_name) ("+metric+`{k8s_namespace_name="clima"}`+")")
		if err != nil || len(got) != 7 {
			t.Errorf("%s: %v for %d Services (%v), want all 7", metric, got, len(got), err)
		}
	}
	targets, err := prom.Targets(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, target := range targets.Active {
		if target.Health != promv1.HealthGood {
			t.Errorf("target %s (%s): %s %s", target.ScrapeURL, target.Labels["service"], target.Health, target.LastError)
		}
	}
}

// checkReplicasPanel: the dashboard's replicas panel, drawn by the local
// view from Prometheus as the page draws it, shows ingest running during
// the load and ends at the replicas clima dev runs (its /status), for
// every Service, once they scaled back to zero.
func checkReplicasPanel(t *testing.T, d *devRun) {
	testenv.Eventually(t, idle+time.Minute, func() error {
		var v view.PanelView
		resp, err := http.Get(d.endpoints.Dashboard + "api/panels/15")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if err := json.NewDecoder(resp.Body).Decode(&v); err != nil || v.Error != "" {
			return fmt.Errorf("%v %s", err, v.Error)
		}
		st := d.status(t)
		running, peak := map[string]any{}, map[string]float64{}
		for _, s := range v.Series {
			if name, ok := strings.CutSuffix(s.Name, " running"); ok && len(s.Values) > 0 {
				running[name] = s.Values[len(s.Values)-1]
				for _, v := range s.Values {
					if f, ok := v.(float64); ok {
						peak[name] = max(peak[name], f)
					}
				}
			}
		}
		if peak["ingest"] < 1 {
			return fmt.Errorf("the panel never shows ingest running (%v)", peak)
		}
		for name, s := range st.Services {
			if s.Ready != 0 || running[name] != float64(0) {
				return fmt.Errorf("%s: %d ready, the panel's latest %v", name, s.Ready, running[name])
			}
		}
		return nil
	}, "the replicas panel and /status to show every Service at zero")
}

// checkLatencyBuckets: the p99 of clima.report.latency over the run, as
// Prometheus computes it, falls in the bucket each store's own histogram
// puts its p99 in.
func checkLatencyBuckets(t *testing.T, d *devRun) {
	ctx := context.Background()
	prom := d.prometheus(t)
	for path, rdb := range map[string]*redis.Client{"kafka": d.redis, "rabbitmq": d.valkey} {
		st, err := store.ReadStats(ctx, rdb)
		if err != nil {
			t.Fatal(err)
		}
		bound := st.Latency.Percentile(0.99)
		lower := int64(0)
		for _, b := range events.LatencyBoundsMs {
			if b < bound {
				lower = b
			}
		}
		got, err := sums(ctx, prom, `histogram_quantile(0.99, sum by (le, clima_path) (clima_report_latency_seconds_bucket{clima_path="`+path+`"}))`)
		if err != nil {
			t.Fatal(err)
		}
		if ms := got[path] * 1000; ms <= float64(lower) || ms > float64(bound) {
			t.Errorf("%s: Prometheus' p99 %.1f ms, outside the store's p99 bucket (%d, %d] ms", path, ms, lower, bound)
		}
	}
}
