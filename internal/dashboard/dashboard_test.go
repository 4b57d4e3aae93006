package dashboard_test

import (
	"context"
	"encoding/json"
	"os"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/clima-dev/clima/internal/dashboard"
	"github.com/clima-dev/clima/internal/store"
	"github.com/clima-dev/clima/internal/testenv"
)

const committed = "../../grafana/dashboard.json"

// TestCommittedDashboardIsSupported keeps every query, transformation and
// override of the file the cluster's Grafana provisions in what the data
// path runs (view's TestCommittedPanelsAreDrawn adds the panel types).
func TestCommittedDashboardIsSupported(t *testing.T) {
	b, err := dashboard.Load(committed)
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Panels) != 20 {
		t.Errorf("%d panels, want the 20 of grafana/dashboard.json", len(b.Panels))
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

// frameJSON is f as the datasource sends it to Grafana's frontend.
func frameJSON(t *testing.T, f dashboard.Frame) string {
	t.Helper()
	data, err := json.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// TestFramesAsThePluginMakesThem runs the committed dashboard's queries
// against real stores and a real Prometheus: the redis-datasource plugin's
// frames, with their names, field types and values, after each panel's
// transformations, and the Prometheus datasource's series named by their
// legends (Prometheus' own parser takes every query).
func TestFramesAsThePluginMakesThem(t *testing.T) {
	b, err := dashboard.Load(committed)
	if err != nil {
		t.Fatal(err)
	}
	stores, _ := testenv.DashboardStores(t)
	ds := dashboard.Datasources{Stores: stores, Prometheus: testenv.DashboardPrometheus(t), Window: b.Window}
	frames := map[string][]dashboard.Frame{}
	for _, p := range b.Panels {
		f, err := p.Frames(context.Background(), ds)
		if err != nil {
			t.Errorf("panel %q: %v", p.Title, err)
		}
		frames[p.Title] = f
	}
	if got, want := frameJSON(t, frames["Reports stored — Redis (Kafka path)"][0]),
		`{"name":"total_messages","refId":"A","fields":[{"name":"Value","type":"number","values":[60]}]}`; got != want {
		t.Errorf("get frame %s, want %s", got, want)
	}
	if f := frames["Redis − Valkey"]; len(f) != 1 || frameJSON(t, f[0]) != `{"name":"C","refId":"C","fields":[{"name":"C","type":"number","values":[3]}]}` {
		t.Errorf("the difference panel's frames %v, want only the expression's (A and B are hidden): 3", f)
	}
	// hgetall: Field and Value are strings; the panel's convertFieldType
	// makes Value a number.
	if f := frames["Reports per country — Redis"][0]; f.Name != store.KeyCountryCounts || f.Fields[0].Type != dashboard.TypeString || f.Fields[1].Type != dashboard.TypeNumber {
		t.Errorf("bar chart frame %s", frameJSON(t, f))
	}
	replicas := frames["Replicas per Service"]
	if len(replicas) != 2 || replicas[0].Name != "ingest desired" || replicas[1].Name != "ingest running" {
		t.Fatalf("replicas frames %v, want ingest desired and running", replicas)
	}
	for i, want := range []float64{3, 2} {
		values := replicas[i].Fields[1].Values
		if replicas[i].Fields[0].Type != dashboard.TypeTime || len(values) == 0 || values[len(values)-1] != want {
			t.Errorf("%s: %s, want a time field and the latest value %v", replicas[i].Name, frameJSON(t, replicas[i]), want)
		}
	}
	if f := frames["Latest reports — Valkey"][0]; f.Name != "xrevrange" || f.Fields[0].Name != "$streamId" || f.Len() != 20 {
		t.Errorf("xrevrange frame %s, want $streamId first and 20 entries", frameJSON(t, f))
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
