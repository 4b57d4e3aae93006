package testenv

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/clima-dev/clima/internal/dashboard"
	"github.com/clima-dev/clima/internal/launch"
	"github.com/clima-dev/clima/internal/store"
)

// DashboardStores are the dashboard's datasources (by uid) on real Redis and
// Valkey servers filled through the store writer: 60 reports in clima-redis
// with 2 dead letters, 57 in clima-valkey; the clients are the read-only
// reader's, as Grafana's.
func DashboardStores(t *testing.T) (map[string]*redis.Client, map[string]*Redis) {
	t.Helper()
	clients, servers := map[string]*redis.Client{}, map[string]*Redis{}
	for uid, n := range map[string]int{"clima-redis": 60, "clima-valkey": 57} {
		server := StartRedis(t)
		if uid == "clima-valkey" {
			server = StartValkey(t) // valkey-server, or the stand-in
		}
		servers[uid] = server
		s := OpenStore(t, server.StoreConfig(store.RoleConsumer, uid))
		ctx := context.Background()
		reports := Reports("dashboard", n)
		if _, err := s.SaveAll(ctx, reports, reports[0].AcceptedAt.Add(42*time.Millisecond)); err != nil {
			t.Fatal(err)
		}
		if uid == "clima-redis" {
			for i := range 2 {
				if _, err := OpenStore(t, server.StoreConfig(store.RoleDeadLetter, uid)).RecordDeadLetter(ctx, store.DeadLetter{ID: strconv.Itoa(i), Reason: "clima.weather.reported: 400", Event: []byte("{}")}); err != nil {
					t.Fatal(err)
				}
			}
		}
		url, password := server.As(store.RoleReader)
		c, err := dashboard.Connect(url, "", password)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		clients[uid] = c
	}
	return clients, servers
}

// DashboardPrometheus is the dashboard's Prometheus datasource (by uid) on
// a real Prometheus that has scraped, twice, a target exporting what clima
// dev exports for ingest: 3 replicas desired, 2 running.
func DashboardPrometheus(t *testing.T) map[string]dashboard.PromSource {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p, err := launch.StartPrometheus(ctx, t.TempDir(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("%v (Prometheus comes from make deps)", err)
	}
	t.Cleanup(p.Close)
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		for _, m := range []string{"kn_revision_pods_desired", "kn_revision_pods_count"} {
			fmt.Fprintf(w, "# TYPE %s gauge\n", m)
		}
		fmt.Fprintln(w, `kn_revision_pods_desired{k8s_namespace_name="clima",kn_service_name="ingest"} 3`)
		fmt.Fprintln(w, `kn_revision_pods_count{k8s_namespace_name="clima",kn_service_name="ingest"} 2`)
	}))
	t.Cleanup(target.Close)
	addr := strings.TrimPrefix(target.URL, "http://")
	if err := p.SetTargets([]launch.TargetGroup{{Targets: []string{addr}, Labels: map[string]string{"service": "clima-dev"}}}); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := p.Scraped(ctx, addr, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	return map[string]dashboard.PromSource{"clima-prometheus": {API: p.API(), ScrapeInterval: launch.ScrapeInterval}}
}
