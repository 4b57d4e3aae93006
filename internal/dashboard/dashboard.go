// Package dashboard is the data path of grafana/dashboard.json without
// Grafana: it reads the file with Grafana's own Go types
// (grafana-foundation-sdk), runs each panel's targets as the
// redis-datasource plugin runs them, producing the plugin's data frames with
// their types, runs Prometheus targets as Grafana's Prometheus datasource
// does (a range query with its step, series named by the legend), and
// applies the panel's transformations. Package view draws
// the frames as Grafana's panels do and serves the page `clima dev` shows.
package dashboard

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/grafana/grafana-foundation-sdk/go/cog/plugins"
	"github.com/grafana/grafana-foundation-sdk/go/cog/variants"
	sdk "github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/expr"
	"github.com/grafana/grafana-foundation-sdk/go/prometheus"
	"github.com/grafana/grafana-foundation-sdk/go/stat"
	"github.com/prometheus/common/model"
	"k8s.io/utils/ptr"
)

// defaultWindow is Grafana's time range when a dashboard names none.
const defaultWindow = 6 * time.Hour

// Board is a dashboard file as the local view uses it.
type Board struct {
	UID, Title string
	// Refresh is the dashboard's auto-refresh interval ("5s"), or "".
	Refresh string
	// Window is the time range shown, up to now (time.from "now-15m").
	Window time.Duration
	Panels []Panel
}

// Panel is one panel of the dashboard.
type Panel struct {
	ID                 uint32
	Title, Description string
	Type               string
	GridPos            sdk.GridPos
	Targets            []Target
	Transformations    []sdk.DataTransformerConfig
	FieldConfig        sdk.FieldConfigSource
	// Stat holds the stat panel's options (nil for other types).
	Stat *stat.Options
	// Unsupported says what of this panel the data path cannot run (a
	// query, a transformation, an override); view.Unsupported adds a type
	// it does not draw.
	Unsupported []string
}

// Target is one query of a panel: a redis-datasource command or a
// server-side math expression.
type Target struct {
	RefID string
	Hide  bool
	Redis *RedisQuery
	Prom  *PromQuery
	// Math is a server-side expression ("$A - $B") when neither is set.
	Math string
}

// overrideMatchers are the override matchers the local view applies.
var overrideMatchers = map[string]bool{"byFrameRefID": true, "byName": true}

// overrideProperties are the override properties the local view applies.
var overrideProperties = map[string]bool{"displayName": true, "unit": true, "decimals": true, "color": true, "thresholds": true, "noValue": true}

var registerPlugins sync.Once

// Load reads a dashboard file strictly with Grafana's types: an unknown or
// misspelt field, a missing required one or a wrong type is an error.
func Load(path string) (*Board, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(data)
}

// Parse is Load for a file's content.
func Parse(data []byte) (*Board, error) {
	// The SDK decodes panel options and queries through a registry of
	// plugins that must be filled first.
	registerPlugins.Do(plugins.RegisterDefaultPlugins)
	var d sdk.Dashboard
	if err := d.UnmarshalJSONStrict(data); err != nil {
		return nil, fmt.Errorf("reading the dashboard with Grafana's types: %w", err)
	}
	if err := d.Validate(); err != nil {
		return nil, fmt.Errorf("validating the dashboard with Grafana's types: %w", err)
	}
	b := &Board{UID: ptr.Deref(d.Uid, ""), Title: ptr.Deref(d.Title, ""), Refresh: ptr.Deref(d.Refresh, ""), Window: defaultWindow}
	if d.Time != nil {
		from, ok := strings.CutPrefix(d.Time.From, "now-")
		window, err := model.ParseDuration(from)
		if !ok || err != nil || d.Time.To != "now" {
			return nil, fmt.Errorf("time %s to %s: the local view shows a window up to now (now-15m to now)", d.Time.From, d.Time.To)
		}
		b.Window = time.Duration(window)
	}
	var panels []*sdk.Panel
	for _, pr := range d.Panels {
		if row := pr.RowPanel; row != nil {
			// A row is shown as a panel that says it is not drawn; the
			// panels it holds are drawn as any other.
			p := Panel{ID: row.Id, Title: ptr.Deref(row.Title, ""), Type: "row", Unsupported: []string{"rows are not drawn locally"}}
			if row.GridPos != nil {
				p.GridPos = *row.GridPos
			}
			b.Panels = append(b.Panels, p)
			for i := range row.Panels {
				panels = append(panels, &row.Panels[i])
			}
			continue
		}
		panels = append(panels, pr.Panel)
	}
	for _, src := range panels {
		p, err := newPanel(src)
		if err != nil {
			return nil, fmt.Errorf("panel %q: %w", ptr.Deref(src.Title, ""), err)
		}
		b.Panels = append(b.Panels, p)
	}
	return b, nil
}

func newPanel(src *sdk.Panel) (Panel, error) {
	p := Panel{Title: ptr.Deref(src.Title, ""), Description: ptr.Deref(src.Description, ""), Type: src.Type, Transformations: src.Transformations}
	if src.Id != nil {
		p.ID = *src.Id
	}
	if src.GridPos != nil {
		p.GridPos = *src.GridPos
	} else {
		p.GridPos = *sdk.NewGridPos()
	}
	if src.FieldConfig != nil {
		p.FieldConfig = *src.FieldConfig
	}
	if o, ok := src.Options.(*stat.Options); ok {
		p.Stat = o
	} else if p.Type == "stat" {
		p.Stat = stat.NewOptions()
	}
	for _, raw := range src.Targets {
		t, why, err := newTarget(raw)
		if err != nil {
			return p, err
		}
		if why != "" {
			p.Unsupported = append(p.Unsupported, why)
			continue
		}
		p.Targets = append(p.Targets, t)
	}
	for _, tr := range p.Transformations {
		if tr.Disabled == nil || !*tr.Disabled {
			transform, ok := transformers[tr.Id]
			if !ok {
				p.Unsupported = append(p.Unsupported, fmt.Sprintf("transformation %q", tr.Id))
			} else if _, err := transform(tr.Options, nil); err != nil {
				return p, err // its options, read strictly
			}
			if tr.Filter != nil || tr.Topic != nil {
				p.Unsupported = append(p.Unsupported, fmt.Sprintf("transformation %q with a filter or topic", tr.Id))
			}
		}
	}
	for _, o := range p.FieldConfig.Overrides {
		if !overrideMatchers[o.Matcher.Id] {
			p.Unsupported = append(p.Unsupported, fmt.Sprintf("field override matcher %q", o.Matcher.Id))
		}
		for _, prop := range o.Properties {
			if !overrideProperties[prop.Id] {
				p.Unsupported = append(p.Unsupported, fmt.Sprintf("field override property %q", prop.Id))
			}
		}
	}
	return p, nil
}

// newTarget reads one query; why says why it cannot run locally.
func newTarget(raw variants.Dataquery) (t Target, why string, err error) {
	switch q := raw.(type) {
	case variants.UnknownDataquery:
		ds, _ := q["datasource"].(map[string]any)
		if ds["type"] != DatasourceType {
			return t, fmt.Sprintf("datasource type %v (only %s runs locally)", ds["type"], DatasourceType), nil
		}
		rq, err := decodeRedisQuery(q)
		if err != nil {
			return t, "", err
		}
		if why := rq.unsupported(); why != "" {
			return t, why, nil
		}
		return Target{RefID: rq.RefID, Hide: rq.Hide, Redis: &rq}, "", nil
	case *prometheus.Dataquery:
		return promTarget(q)
	case prometheus.Dataquery:
		return promTarget(&q)
	case *expr.Expr:
		return exprTarget(q)
	case expr.Expr:
		return exprTarget(&q)
	}
	return t, fmt.Sprintf("query of type %s", raw.DataqueryType()), nil
}

func exprTarget(e *expr.Expr) (Target, string, error) {
	if e.TypeMath == nil {
		return Target{}, "server-side expressions other than math", nil
	}
	m := e.TypeMath
	if _, err := parseMath(m.Expression); err != nil {
		return Target{}, fmt.Sprintf("expression %q: %v", m.Expression, err), nil
	}
	return Target{RefID: ptr.Deref(m.RefId, ""), Hide: m.Hide != nil && *m.Hide, Math: m.Expression}, "", nil
}
