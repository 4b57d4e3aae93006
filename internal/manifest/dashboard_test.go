package manifest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"sigs.k8s.io/yaml"

	"github.com/clima-dev/clima/events"
	"github.com/clima-dev/clima/internal/store"
	"github.com/clima-dev/clima/internal/testenv"
)

// panelTarget is a query of the dashboard, in the redis-datasource's model
// (or a server-side expression).
type panelTarget struct {
	RefID      string `json:"refId"`
	Datasource struct {
		Type string `json:"type"`
		UID  string `json:"uid"`
	} `json:"datasource"`
	Type       string `json:"type"`
	Command    string `json:"command"`
	KeyName    string `json:"keyName"`
	Field      string `json:"field"`
	Section    string `json:"section"`
	Start      string `json:"start"`
	End        string `json:"end"`
	Count      int    `json:"count"`
	Expression string `json:"expression"`
}

type panel struct {
	Title   string        `json:"title"`
	Targets []panelTarget `json:"targets"`
}

// filledStores are Redis and Valkey filled through the store writer, as the
// consumers fill them, and what each must then show.
type filledStores struct {
	clients map[string]*redis.Client // by datasource uid
	reports map[string][]events.Report
	dead    int
}

func fillStores(t *testing.T) *filledStores {
	t.Helper()
	f := &filledStores{clients: map[string]*redis.Client{}, reports: map[string][]events.Report{}, dead: 2}
	// The Valkey path lags 3 reports behind, so that the difference panel
	// has something to show.
	for uid, server := range map[string]*testenv.Redis{"clima-redis": testenv.StartRedis(t), "clima-valkey": testenv.StartValkey(t)} {
		n := 60
		if uid == "clima-valkey" {
			n = 57
		}
		s, err := store.Open(store.Config{URL: server.URL(), Password: server.Password, Path: uid, Retention: time.Hour, DedupeWindow: time.Hour, RecentMax: 1000})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		ctx := context.Background()
		reports := testenv.Reports("dashboard", n)
		if _, err := s.SaveAll(ctx, reports, reports[0].AcceptedAt.Add(42*time.Millisecond)); err != nil {
			t.Fatal(err)
		}
		if uid == "clima-redis" {
			for i := range f.dead {
				if _, err := s.RecordDeadLetter(ctx, store.DeadLetter{ID: strconv.Itoa(i), Reason: "clima.weather.reported: 400", Event: []byte("{}")}); err != nil {
					t.Fatal(err)
				}
			}
		}
		f.clients[uid] = server.Client(t)
		f.reports[uid] = reports
	}
	return f
}

// TestDashboardReadsWhatConsumersWrite runs every query of every panel of
// grafana/dashboard.json against the real stores and checks the figures.
func TestDashboardReadsWhatConsumersWrite(t *testing.T) {
	root := repoRoot(t)
	data, err := os.ReadFile(filepath.Join(root, "grafana", "dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dashboard struct {
		Panels []panel `json:"panels"`
	}
	if err := json.Unmarshal(data, &dashboard); err != nil {
		t.Fatalf("grafana/dashboard.json: %v", err)
	}
	checkDatasourcesProvisioned(t, root, dashboard.Panels)
	stores := fillStores(t)

	for _, p := range dashboard.Panels {
		t.Run(p.Title, func(t *testing.T) {
			if len(p.Targets) == 0 {
				t.Fatal("panel has no query")
			}
			results := map[string]float64{}
			for _, target := range p.Targets {
				if target.Datasource.Type == "__expr__" {
					got := evalMath(t, target.Expression, results)
					if want := float64(len(stores.reports["clima-redis"]) - len(stores.reports["clima-valkey"])); got != want {
						t.Errorf("%s = %v, want %v", target.Expression, got, want)
					}
					continue
				}
				if n, ok := stores.check(t, target); ok {
					results[target.RefID] = n
				}
			}
		})
	}
}

// check runs one query and compares it with what was stored; it returns
// the query's number, for the expressions that combine them.
func (f *filledStores) check(t *testing.T, q panelTarget) (float64, bool) {
	t.Helper()
	client, ok := f.clients[q.Datasource.UID]
	if !ok || q.Datasource.Type != "redis-datasource" || q.Type != "command" {
		t.Fatalf("query %s reads datasource %+v with %q, want a redis-datasource command on Redis or Valkey", q.RefID, q.Datasource, q.Type)
	}
	ctx := context.Background()
	reports := f.reports[q.Datasource.UID]
	switch q.Command + " " + q.KeyName {
	case "get " + store.KeyTotal:
		n, err := client.Get(ctx, q.KeyName).Int()
		if err != nil || n != len(reports) {
			t.Errorf("GET %s = %d (%v), want %d", q.KeyName, n, err, len(reports))
		}
		return float64(n), true
	case "get " + store.KeyDeadLetters:
		n, err := client.Get(ctx, q.KeyName).Int()
		if err != nil || n != f.dead {
			t.Errorf("GET %s = %d (%v), want %d", q.KeyName, n, err, f.dead)
		}
		return float64(n), true
	case "hgetall " + store.KeyCountryCounts, "hgetall " + store.KeyWeatherCounts:
		want := map[string]int{}
		for _, r := range reports {
			if q.KeyName == store.KeyCountryCounts {
				want[r.Country]++
			} else {
				want[string(r.Weather)]++
			}
		}
		got, err := client.HGetAll(ctx, q.KeyName).Result()
		if err != nil || fmt.Sprint(toInts(got)) != fmt.Sprint(want) {
			t.Errorf("HGETALL %s = %v (%v), want %v", q.KeyName, got, err, want)
		}
	case "hgetall " + store.KeyLatency:
		got, err := client.HGetAll(ctx, q.KeyName).Result()
		if err != nil || got["count"] != strconv.Itoa(len(reports)) || got["max_ms"] != "42" || got["le_50"] != strconv.Itoa(len(reports)) {
			t.Errorf("HGETALL %s = %v (%v), want %d reports in le_50, max 42 ms", q.KeyName, got, err, len(reports))
		}
	case "hgetall " + store.KeyDeadReasons:
		got, err := client.HGetAll(ctx, q.KeyName).Result()
		if err != nil || got["clima.weather.reported: 400"] != strconv.Itoa(f.dead) {
			t.Errorf("HGETALL %s = %v (%v), want %d", q.KeyName, got, err, f.dead)
		}
	case "xrevrange " + store.KeyRecent:
		entries, err := client.XRevRangeN(ctx, q.KeyName, q.Start, q.End, int64(q.Count)).Result()
		want := min(q.Count, len(reports))
		if err != nil || len(entries) != want || entries[0].Values["id"] != reports[len(reports)-1].ID {
			t.Errorf("XREVRANGE %s %s %s COUNT %d: %d entries (%v), want %d, the newest first", q.KeyName, q.Start, q.End, q.Count, len(entries), err, want)
		}
	case "info ":
		info, err := client.Info(ctx, q.Section).Result()
		if err != nil || !strings.Contains(info, q.Field+":") {
			t.Errorf("INFO %s has no field %q (%v)", q.Section, q.Field, err)
		}
	default:
		t.Errorf("query %s runs %q on %q, which no consumer writes", q.RefID, q.Command, q.KeyName)
	}
	return 0, false
}

// evalMath evaluates the "$A - $B" expressions the dashboard uses.
func evalMath(t *testing.T, expr string, results map[string]float64) float64 {
	t.Helper()
	m := regexp.MustCompile(`^\$(\w+)\s*([-+])\s*\$(\w+)$`).FindStringSubmatch(strings.TrimSpace(expr))
	if m == nil {
		t.Fatalf("expression %q is not of the form $A - $B", expr)
	}
	a, okA := results[m[1]]
	b, okB := results[m[3]]
	if !okA || !okB {
		t.Fatalf("expression %q uses a query that returned no number", expr)
	}
	if m[2] == "-" {
		return a - b
	}
	return a + b
}

// checkDatasourcesProvisioned checks that every datasource the dashboard
// names is provisioned by grafana/values.yaml, with the redis plugin.
func checkDatasourcesProvisioned(t *testing.T, root string, panels []panel) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(root, "grafana", "values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var values struct {
		Plugins     []string `json:"plugins"`
		Datasources map[string]struct {
			Datasources []struct {
				UID  string `json:"uid"`
				Type string `json:"type"`
				URL  string `json:"url"`
			} `json:"datasources"`
		} `json:"datasources"`
	}
	if err := yaml.Unmarshal(data, &values); err != nil {
		t.Fatal(err)
	}
	provisioned := map[string]string{}
	for _, file := range values.Datasources {
		for _, ds := range file.Datasources {
			provisioned[ds.UID] = ds.Type
		}
	}
	for _, p := range panels {
		for _, q := range p.Targets {
			if q.Datasource.Type != "__expr__" && provisioned[q.Datasource.UID] != q.Datasource.Type {
				t.Errorf("panel %q uses datasource %s (%s), which grafana/values.yaml does not provision", p.Title, q.Datasource.UID, q.Datasource.Type)
			}
		}
	}
	if !strings.Contains(strings.Join(values.Plugins, ","), "redis-datasource") {
		t.Errorf("grafana/values.yaml does not install the redis-datasource plugin")
	}
}

func toInts(m map[string]string) map[string]int {
	out := map[string]int{}
	for k, v := range m {
		out[k], _ = strconv.Atoi(v)
	}
	return out
}
