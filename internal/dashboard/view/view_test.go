package view_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/redis/go-redis/v9"

	"github.com/clima-dev/clima/internal/dashboard"
	"github.com/clima-dev/clima/internal/dashboard/view"
	"github.com/clima-dev/clima/internal/testenv"
)

const committed = "../../../grafana/dashboard.json"

// TestPanelsAsGrafanaDrawsThem draws the committed dashboard from real
// stores: what each panel makes of its frames (TestFramesAsThePluginMakesThem
// holds the frames).
func TestPanelsAsGrafanaDrawsThem(t *testing.T) {
	b, err := dashboard.Load(committed)
	if err != nil {
		t.Fatal(err)
	}
	views := map[string]view.PanelView{}
	for i, v := range view.Render(context.Background(), b, dashboard.Datasources{Stores: filled(t), Prometheus: testenv.DashboardPrometheus(t)}) {
		if v.Error != "" {
			t.Errorf("panel %q: %s", b.Panels[i].Title, v.Error)
		}
		views[b.Panels[i].Title] = v
	}
	stat := func(title string) string {
		t.Helper()
		v := views[title]
		if v.Stat == nil || len(v.Stat.Values) != 1 {
			t.Fatalf("%q shows %+v, want one value", title, v.Stat)
		}
		return v.Stat.Values[0].Text
	}

	for title, want := range map[string]string{
		"Reports stored — Redis (Kafka path)":     "60",
		"Reports stored — Valkey (RabbitMQ path)": "57",
		"Redis − Valkey":                          "3",
		"Dead letters":                            "2",
	} {
		if got := stat(title); got != want {
			t.Errorf("%q shows %q, want %q", title, got, want)
		}
	}
	if v := views["Redis − Valkey"]; len(v.Frames) != 1 {
		t.Errorf("the difference panel shows %d frames, want only the expression's (A and B are hidden)", len(v.Frames))
	}

	// The bars are the hash, its values made numbers by convertFieldType.
	bars := views["Reports per country — Redis"]
	shown := map[string]string{}
	for i, c := range bars.Bars.Categories {
		shown[c] = bars.Bars.Series[0].Values[i].Text
	}
	if want := "map[CR:7 ES:7 GT:8 HN:8 MX:8 NI:7 PA:7 SV:8]"; fmt.Sprint(shown) != want {
		t.Errorf("bars %v, want %s", shown, want)
	}
	if bars.Bars.Series[0].Color != "#F2495C" {
		t.Errorf("Redis bars are %s, want the fixed colour red (#F2495C)", bars.Bars.Series[0].Color)
	}

	latest := views["Latest reports — Valkey"]
	if id := latest.Table.Rows[0][slices.Index(latest.Table.Columns, "id")]; id != "dashboard-56" {
		t.Errorf("the newest report shown is %s, want dashboard-56", id)
	}

	latency := views["End-to-end latency — Kafka path"].Table
	cells := map[string]string{}
	for _, row := range latency.Rows {
		cells[row[0]] = row[1]
	}
	if cells["count"] != "60" || cells["max_ms"] != "42" || cells["le_50"] != "60" {
		t.Errorf("latency table %v, want 60 reports in le_50, max 42 ms", cells)
	}
	if reasons := views["Dead letters by reason"].Table; len(reasons.Rows) != 1 || reasons.Rows[0][1] != "2" {
		t.Errorf("dead letter reasons %v", reasons)
	}

	series := views["Live ops/s"].Series
	if len(series) != 2 || series[0].Name != "Redis" || series[1].Name != "Valkey" || !series[0].Streaming || series[0].Capacity != 600 {
		t.Fatalf("live ops/s series %+v, want Redis and Valkey streaming 600 points", series)
	}
	if _, ok := series[0].Values[0].(float64); !ok || len(series[0].Times) != 1 {
		t.Errorf("a streamed point is %v at %v, want one number and its time", series[0].Values, series[0].Times)
	}
}

// TestHashBarsNeedAConversion: the plugin answers hgetall with strings, so
// a bar chart without convertFieldType draws nothing in Grafana, and
// nothing locally.
func TestHashBarsNeedAConversion(t *testing.T) {
	raw := committedJSON(t)
	for _, p := range raw["panels"].([]any) {
		delete(p.(map[string]any), "transformations")
	}
	data, _ := json.Marshal(raw)
	b, err := dashboard.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range view.Render(context.Background(), b, dashboard.Datasources{Stores: filled(t)}) {
		if b.Panels[i].Type == "barchart" && (v.Message != "No numeric fields found" || v.Bars != nil) {
			t.Errorf("%q without its conversion shows %+v, want Grafana's \"No numeric fields found\"", b.Panels[i].Title, v)
		}
	}
}

// TestNewPanelsAppear adds a stat panel with a get target to a copy of the
// dashboard file, and a panel the local view cannot draw: both show in a
// real browser with no code change, the second saying why.
func TestNewPanelsAppear(t *testing.T) {
	clients, servers := testenv.DashboardStores(t)
	if err := servers["clima-valkey"].Client(t).Set(context.Background(), "extra_counter", 4321, 0).Err(); err != nil {
		t.Fatal(err)
	}
	raw := committedJSON(t)
	target := func(command string) map[string]any {
		return map[string]any{"refId": "A", "datasource": map[string]any{"type": "redis-datasource", "uid": "clima-valkey"},
			"type": "command", "command": command, "keyName": "extra_counter"}
	}
	raw["panels"] = append(raw["panels"].([]any),
		map[string]any{"id": 101, "type": "stat", "title": "An added counter", "gridPos": map[string]any{"x": 0, "y": 68, "w": 6, "h": 4},
			"targets": []any{target("get")}},
		map[string]any{"id": 102, "type": "piechart", "title": "A pie", "gridPos": map[string]any{"x": 6, "y": 68, "w": 6, "h": 4},
			"targets": []any{target("get")}},
		map[string]any{"id": 103, "type": "stat", "title": "A module command", "gridPos": map[string]any{"x": 12, "y": 68, "w": 6, "h": 4},
			"targets": []any{target("ts.range")}},
	)
	data, _ := json.MarshalIndent(raw, "", "  ")
	path := filepath.Join(t.TempDir(), "dashboard.json")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	srv, err := view.NewServer(path, dashboard.Datasources{Stores: clients}, nil)
	if err != nil {
		t.Fatal(err)
	}
	web := httptest.NewServer(srv.Handler())
	t.Cleanup(web.Close)

	browser := testenv.Chromium(t)
	if err := chromedp.Do(browser.Ctx, chromedp.Navigate(web.URL)); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"An added counter": "stat 4321",
		"A pie":            `unsupported panel type "piechart"`,
		"A module command": `unsupported command "ts.range"`,
	}
	testenv.Eventually(t, 30*time.Second, func() error {
		panels, err := testenv.ReadDashboard(browser)
		if err != nil {
			return err
		}
		if len(panels) != 23 {
			return fmt.Errorf("%d panels on the page, want the committed 20 and 3 added", len(panels))
		}
		for _, p := range panels {
			w, ok := want[p.Title]
			if !ok {
				continue
			}
			got := "stat " + strings.Join(p.Stat, " ")
			if strings.HasPrefix(w, "unsupported") {
				got = strings.Replace(p.Message, "Not supported by the local view: ", "unsupported ", 1)
			}
			if !strings.HasPrefix(got, w) {
				return fmt.Errorf("%q shows %q, want %q", p.Title, got, w)
			}
		}
		return nil
	}, "the page to show the added panels")
	if console := browser.Console(); len(console) > 0 {
		t.Errorf("the browser console has errors:\n%s", strings.Join(console, "\n"))
	}
}

// committedJSON is grafana/dashboard.json as plain JSON, to change.
func committedJSON(t *testing.T) map[string]any {
	t.Helper()
	data, err := os.ReadFile(committed)
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string]any
	if err := json.Unmarshal(data, &raw); err != nil {
		t.Fatal(err)
	}
	return raw
}

func filled(t *testing.T) map[string]*redis.Client {
	t.Helper()
	clients, _ := testenv.DashboardStores(t)
	return clients
}

// TestCommittedPanelsAreDrawn: the view has a drawer for every panel type
// of the file the cluster's Grafana provisions, and says so of one it has
// none for.
func TestCommittedPanelsAreDrawn(t *testing.T) {
	b, err := dashboard.Load(committed)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range b.Panels {
		if u := view.Unsupported(p); len(u) > 0 {
			t.Errorf("panel %q (%s): %v", p.Title, p.Type, u)
		}
	}
	pie := b.Panels[0]
	pie.Type = "piechart"
	if u := view.Unsupported(pie); len(u) != 1 || !strings.HasPrefix(u[0], `panel type "piechart"`) {
		t.Errorf("a piechart: %q", u)
	}
}
