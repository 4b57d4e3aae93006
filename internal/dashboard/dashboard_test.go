package dashboard_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/redis/go-redis/v9"
	"sigs.k8s.io/yaml"

	"github.com/clima-dev/clima/internal/dashboard"
	"github.com/clima-dev/clima/internal/store"
	"github.com/clima-dev/clima/internal/testenv"
)

const committed = "../../grafana/dashboard.json"

// TestCommittedDashboardIsSupported keeps every panel of the file the
// cluster's Grafana provisions drawable by the local view.
func TestCommittedDashboardIsSupported(t *testing.T) {
	b, err := dashboard.Load(committed)
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Panels) != 14 {
		t.Errorf("%d panels, want the 14 of grafana/dashboard.json", len(b.Panels))
	}
	for _, p := range b.Panels {
		if len(p.Unsupported) > 0 || len(p.Targets) == 0 {
			t.Errorf("panel %d %q: unsupported %v, %d targets", p.ID, p.Title, p.Unsupported, len(p.Targets))
		}
	}
}

// TestStrictRead: Grafana ignores a misspelt field; reading the file with
// Grafana's types strictly does not.
func TestStrictRead(t *testing.T) {
	data, err := os.ReadFile(committed)
	if err != nil {
		t.Fatal(err)
	}
	panel := func(d map[string]any, i int) map[string]any { return d["panels"].([]any)[i].(map[string]any) }
	// Each mutation and the word its refusal must name.
	for name, mutate := range map[string]func(d map[string]any) string{
		"misspelt panel field": func(d map[string]any) string {
			p := panel(d, 0)
			p["gridPosition"] = p["gridPos"]
			delete(p, "gridPos")
			return "gridPosition"
		},
		"misspelt target field": func(d map[string]any) string {
			q := panel(d, 0)["targets"].([]any)[0].(map[string]any)
			q["keyNames"] = q["keyName"]
			delete(q, "keyName")
			return "keyNames"
		},
		"misspelt stat option": func(d map[string]any) string {
			panel(d, 0)["options"].(map[string]any)["colourMode"] = "value"
			return "colourMode"
		},
		"misspelt transformation option": func(d map[string]any) string {
			panel(d, 4)["transformations"].([]any)[0].(map[string]any)["options"].(map[string]any)["conversion"] = []any{}
			return "conversion"
		},
		"missing required field": func(d map[string]any) string { delete(d, "templating"); return "templating" },
		"wrong type":             func(d map[string]any) string { panel(d, 0)["gridPos"].(map[string]any)["w"] = "six"; return "w" },
	} {
		t.Run(name, func(t *testing.T) {
			var d map[string]any
			if err := json.Unmarshal(data, &d); err != nil {
				t.Fatal(err)
			}
			word := mutate(d)
			changed, _ := json.Marshal(d)
			_, err := dashboard.Parse(changed)
			if err == nil || !strings.Contains(err.Error(), word) {
				t.Fatalf("read with error %v, want one naming %q", err, word)
			}
		})
	}
}

// filled are Redis and Valkey filled as the consumers fill them: 60 and 57
// reports, 2 dead letters in Redis; the clients log in as Grafana's read-only user.
func filled(t *testing.T) map[string]*redis.Client {
	t.Helper()
	clients, _ := filledServers(t)
	return clients
}

// filledServers is filled, with the servers, for a test that arranges more.
func filledServers(t *testing.T) (map[string]*redis.Client, map[string]*testenv.Redis) {
	t.Helper()
	clients, servers := map[string]*redis.Client{}, map[string]*testenv.Redis{}
	for uid, n := range map[string]int{"clima-redis": 60, "clima-valkey": 57} {
		server := testenv.StartRedis(t)
		if uid == "clima-valkey" {
			server = testenv.StartValkey(t) // valkey-server, or the stand-in
		}
		servers[uid] = server
		s := testenv.OpenStore(t, server.StoreConfig(store.RoleConsumer, uid))
		ctx := context.Background()
		reports := testenv.Reports("dashboard", n)
		if _, err := s.SaveAll(ctx, reports, reports[0].AcceptedAt.Add(42*time.Millisecond)); err != nil {
			t.Fatal(err)
		}
		if uid == "clima-redis" {
			for i := range 2 {
				if _, err := testenv.OpenStore(t, server.StoreConfig(store.RoleDeadLetter, uid)).RecordDeadLetter(ctx, store.DeadLetter{ID: strconv.Itoa(i), Reason: "clima.weather.reported: 400", Event: []byte("{}")}); err != nil {
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

func frameJSON(t *testing.T, f dashboard.Frame) string {
	t.Helper()
	data, err := json.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// TestPanelsAsGrafanaDrawsThem runs the committed dashboard against real
// stores: the plugin's frames with their types, and what each panel makes
// of them.
func TestPanelsAsGrafanaDrawsThem(t *testing.T) {
	b, err := dashboard.Load(committed)
	if err != nil {
		t.Fatal(err)
	}
	views := map[string]dashboard.PanelView{}
	for i, v := range b.Render(context.Background(), filled(t)) {
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

	if got, want := frameJSON(t, views["Reports stored — Redis (Kafka path)"].Frames[0]),
		`{"name":"total_messages","refId":"A","fields":[{"name":"Value","type":"number","values":[60]}]}`; got != want {
		t.Errorf("get frame %s, want %s", got, want)
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

	// hgetall: Field and Value are strings; the panel's convertFieldType
	// makes Value a number, and the bars are the hash.
	bars := views["Reports per country — Redis"]
	if f := bars.Frames[0]; f.Name != store.KeyCountryCounts || f.Fields[0].Type != dashboard.TypeString || f.Fields[1].Type != dashboard.TypeNumber {
		t.Errorf("bar chart frame %s", frameJSON(t, f))
	}
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
	if f := latest.Frames[0]; f.Name != "xrevrange" || f.Fields[0].Name != "$streamId" || f.Len() != 20 {
		t.Errorf("xrevrange frame %s, want $streamId first and 20 entries", frameJSON(t, f))
	}
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
	for i, v := range b.Render(context.Background(), filled(t)) {
		if b.Panels[i].Type == "barchart" && (v.Message != "No numeric fields found" || v.Bars != nil) {
			t.Errorf("%q without its conversion shows %+v, want Grafana's \"No numeric fields found\"", b.Panels[i].Title, v)
		}
	}
}

// TestNewPanelsAppear adds a stat panel with a get target to a copy of the
// dashboard file, and a panel the local view cannot draw: both show in a
// real browser with no code change, the second saying why.
func TestNewPanelsAppear(t *testing.T) {
	clients, servers := filledServers(t)
	if err := servers["clima-valkey"].Client(t).Set(context.Background(), "extra_counter", 4321, 0).Err(); err != nil {
		t.Fatal(err)
	}
	raw := committedJSON(t)
	target := func(command string) map[string]any {
		return map[string]any{"refId": "A", "datasource": map[string]any{"type": "redis-datasource", "uid": "clima-valkey"},
			"type": "command", "command": command, "keyName": "extra_counter"}
	}
	raw["panels"] = append(raw["panels"].([]any),
		map[string]any{"id": 15, "type": "stat", "title": "An added counter", "gridPos": map[string]any{"x": 0, "y": 44, "w": 6, "h": 4},
			"targets": []any{target("get")}},
		map[string]any{"id": 16, "type": "piechart", "title": "A pie", "gridPos": map[string]any{"x": 6, "y": 44, "w": 6, "h": 4},
			"targets": []any{target("get")}},
		map[string]any{"id": 17, "type": "stat", "title": "A module command", "gridPos": map[string]any{"x": 12, "y": 44, "w": 6, "h": 4},
			"targets": []any{target("ts.range")}},
	)
	data, _ := json.MarshalIndent(raw, "", "  ")
	path := filepath.Join(t.TempDir(), "dashboard.json")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	srv, err := dashboard.NewServer(path, clients, nil)
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
		if len(panels) != 17 {
			return fmt.Errorf("%d panels on the page, want 17", len(panels))
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

// TestDatasourcesProvisioned: every datasource a panel names is one that
// grafana/values.yaml provisions, with the redis-datasource plugin, and its
// password comes from a Secret.
func TestDatasourcesProvisioned(t *testing.T) {
	b, err := dashboard.Load(committed)
	if err != nil {
		t.Fatal(err)
	}
	sources, err := dashboard.ReadDatasources("../../grafana/values.yaml")
	if err != nil {
		t.Fatal(err)
	}
	provisioned := map[string]dashboard.Datasource{}
	for _, ds := range sources {
		provisioned[ds.UID] = ds
	}
	for _, p := range b.Panels {
		for _, q := range p.Targets {
			if q.Redis == nil {
				continue
			}
			ds, ok := provisioned[q.Redis.Datasource.UID]
			if !ok || ds.Type != q.Redis.Datasource.Type || ds.PasswordSecret == "" {
				t.Errorf("panel %q reads %s (%s), which grafana/values.yaml does not provision with a password from a Secret: %+v",
					p.Title, q.Redis.Datasource.UID, q.Redis.Datasource.Type, ds)
			}
		}
	}
	values, err := os.ReadFile("../../grafana/values.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var chart struct{ Plugins []string } // "id" or "id version", as the chart reads them
	if err := yaml.Unmarshal(values, &chart); err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(chart.Plugins, func(p string) bool { return strings.Fields(p)[0] == dashboard.DatasourceType }) {
		t.Errorf("grafana/values.yaml does not install the %s plugin: plugins %q", dashboard.DatasourceType, chart.Plugins)
	}
}

// TestRowsShowTheirPanels: a row is not drawn, and says so; the panels it
// holds are read like any other.
func TestRowsShowTheirPanels(t *testing.T) {
	b, err := dashboard.Parse([]byte(`{"schemaVersion": 39, "title": "rows", "templating": {"list": []}, "annotations": {"list": []},
	  "panels": [{"type": "row", "id": 7, "title": "A row", "collapsed": true, "gridPos": {"x": 0, "y": 0, "w": 24, "h": 1},
	    "panels": [{"type": "stat", "id": 8, "title": "Inside", "gridPos": {"x": 0, "y": 1, "w": 6, "h": 4},
	      "targets": [{"refId": "A", "datasource": {"type": "redis-datasource", "uid": "clima-redis"}, "type": "command", "command": "get", "keyName": "k"}]}]}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Panels) != 2 || b.Panels[0].ID != 7 || len(b.Panels[0].Unsupported) != 1 || b.Panels[1].ID != 8 || len(b.Panels[1].Unsupported) != 0 {
		t.Fatalf("panels %+v, want the row (unsupported) and its stat", b.Panels)
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
