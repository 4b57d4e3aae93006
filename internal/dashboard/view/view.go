// Package view draws the panels of grafana/dashboard.json from their data
// frames (package dashboard) the way Grafana's panels draw them — field
// config, units, thresholds, colours, reductions; stats, bar charts,
// tables, streamed time series with uPlot — and serves the read-only page.
package view

import (
	"context"
	"fmt"
	"math"
	"regexp"
	"time"

	"github.com/clima-dev/clima/internal/dashboard"
	"k8s.io/utils/ptr"
)

// Messages Grafana's panels show instead of a visualisation.
const (
	msgNoData        = "No data"
	msgBarsNeedX     = "Bar charts requires a string or time field"
	msgNoNumeric     = "No numeric fields found"
	msgSeriesNeedsTS = "Data does not have a time field"
)

// PanelView is what the page draws for one panel: the panel's data frames
// after its transformations, and what its type makes of them.
type PanelView struct {
	ID   uint32 `json:"id"`
	Type string `json:"type"`
	// Error is a query's failure, shown in the panel's corner as Grafana does.
	Error string `json:"error,omitempty"`
	// Message replaces the visualisation ("No data", a bar chart without a
	// numeric field, …), as Grafana's panel does.
	Message     string       `json:"message,omitempty"`
	Unsupported []string     `json:"unsupported,omitempty"`
	Stat        *StatView    `json:"stat,omitempty"`
	Bars        *BarsView    `json:"bars,omitempty"`
	Table       *TableView   `json:"table,omitempty"`
	Series      []SeriesView `json:"series,omitempty"`
	// Frames are for Go's tests; the page draws from the views above.
	Frames []dashboard.Frame `json:"-"`
}

// DisplayValue is one value as a panel shows it.
type DisplayValue struct {
	Title  string   `json:"title"`
	Text   string   `json:"text"`
	Number *float64 `json:"number"`
	Color  string   `json:"color"`
}

// StatView is a stat panel's values and how it colours them.
type StatView struct {
	ColorMode string         `json:"colorMode"`
	TextMode  string         `json:"textMode"`
	Values    []DisplayValue `json:"values"`
}

// BarsView is a bar chart: categories along x, one series per numeric field.
type BarsView struct {
	Categories []string     `json:"categories"`
	Series     []BarsSeries `json:"series"`
}

// BarsSeries is one numeric field of a bar chart.
type BarsSeries struct {
	Name   string         `json:"name"`
	Color  string         `json:"color"`
	Values []DisplayValue `json:"values"`
}

// TableView is a table panel's first frame, cells as text.
type TableView struct {
	Columns []string   `json:"columns"`
	Numeric []bool     `json:"numeric"`
	Rows    [][]string `json:"rows"`
}

// SeriesView is one series of a time series panel. A streaming series
// carries the newest point; the page keeps the last Capacity of them, as
// the plugin's frontend does.
type SeriesView struct {
	Name      string    `json:"name"`
	Color     string    `json:"color"`
	Unit      string    `json:"unit"`
	Streaming bool      `json:"streaming"`
	Capacity  int       `json:"capacity"`
	Times     []float64 `json:"times"`
	Values    []any     `json:"values"`
}

// Render runs every panel's queries against the datasources
// and returns what each panel shows.
func Render(ctx context.Context, b *dashboard.Board, ds dashboard.Datasources) []PanelView {
	ds.Window = b.Window
	views := make([]PanelView, len(b.Panels))
	for i, p := range b.Panels {
		views[i] = RenderPanel(ctx, p, ds)
	}
	return views
}

// panel is a dashboard panel as the view draws it.
type panel struct{ dashboard.Panel }

// drawers are the panel types the view draws, each with what it makes of
// the panel's frames: adding a type is a drawer here and its drawing in
// web/static/app.js.
var drawers = map[string]func(p panel, frames []dashboard.Frame, v *PanelView){
	"stat":       func(p panel, frames []dashboard.Frame, v *PanelView) { v.Stat = p.stat(frames) },
	"barchart":   func(p panel, frames []dashboard.Frame, v *PanelView) { v.Bars, v.Message = p.bars(frames) },
	"table":      func(p panel, frames []dashboard.Frame, v *PanelView) { v.Table, v.Message = p.table(frames) },
	"timeseries": func(p panel, frames []dashboard.Frame, v *PanelView) { v.Series, v.Message = p.series(frames) },
}

// Unsupported says what of a panel the view cannot draw: what the data
// path cannot run (the panel's Unsupported), and a type it has no drawer
// for. Such a panel is shown saying so, never dropped.
func Unsupported(p dashboard.Panel) []string {
	if _, ok := drawers[p.Type]; ok || p.Type == "row" { // a row's own message says it
		return p.Unsupported
	}
	return append([]string{fmt.Sprintf("panel type %q (stat, barchart, table and timeseries are drawn locally)", p.Type)}, p.Unsupported...)
}

// RenderPanel runs one panel's queries and draws its data.
func RenderPanel(ctx context.Context, dp dashboard.Panel, ds dashboard.Datasources) PanelView {
	p := panel{dp}
	v := PanelView{ID: p.ID, Type: p.Type, Unsupported: Unsupported(dp), Frames: []dashboard.Frame{}}
	if len(v.Unsupported) > 0 {
		return v
	}
	frames, err := p.Frames(ctx, ds)
	if err != nil {
		v.Error = err.Error()
		return v
	}
	v.Frames = frames
	drawers[p.Type](p, frames, &v)
	return v
}

// stat reduces each numeric field to one value (reduceOptions.calcs) or
// shows every value (reduceOptions.values), as Grafana's stat panel.
func (p panel) stat(frames []dashboard.Frame) *StatView {
	o := p.Stat
	sv := &StatView{ColorMode: string(o.ColorMode), TextMode: string(o.TextMode)}
	calc := "lastNotNull"
	if len(o.ReduceOptions.Calcs) > 0 {
		calc = o.ReduceOptions.Calcs[0]
	}
	var match *regexp.Regexp
	if f := ptr.Deref(o.ReduceOptions.Fields, ""); len(f) > 2 && f[0] == '/' && f[len(f)-1] == '/' {
		match, _ = regexp.Compile(f[1 : len(f)-1])
	}
	for i, frame := range frames {
		for _, field := range frame.Fields {
			cfg := p.fieldConfig(frame, field, "stat")
			name := cfg.displayName
			switch fields := ptr.Deref(o.ReduceOptions.Fields, ""); {
			case fields == "" && field.Type != dashboard.TypeNumber:
				continue
			case match != nil && !match.MatchString(name):
				continue
			case fields != "" && match == nil && fields != name && fields != field.Name:
				continue
			}
			if ptr.Deref(o.ReduceOptions.Values, false) {
				for _, raw := range field.Values {
					sv.Values = append(sv.Values, cfg.display(name, raw, i))
				}
				continue
			}
			sv.Values = append(sv.Values, cfg.display(name, reduce(calc, field.Values), i))
		}
	}
	if len(sv.Values) == 0 {
		cfg := p.fieldConfig(dashboard.Frame{}, dashboard.Field{}, "stat")
		text := msgNoData
		if cfg.noValue != nil {
			text = *cfg.noValue
		}
		sv.Values = []DisplayValue{{Text: text, Color: cfg.noValueColor()}}
	}
	return sv
}

// reduce is one of Grafana's standard calculations over a field.
func reduce(calc string, values []any) any {
	var nums []float64
	for _, v := range values {
		if n, ok := v.(float64); ok && !math.IsNaN(n) {
			nums = append(nums, n)
		}
	}
	switch calc {
	case "last":
		if len(values) == 0 {
			return nil
		}
		return values[len(values)-1]
	case "first":
		if len(values) == 0 {
			return nil
		}
		return values[0]
	case "count":
		return float64(len(values))
	}
	if len(nums) == 0 {
		return nil
	}
	switch calc {
	case "firstNotNull":
		return nums[0]
	case "min", "max", "sum", "mean":
		acc := nums[0]
		for _, n := range nums[1:] {
			switch calc {
			case "min":
				acc = math.Min(acc, n)
			case "max":
				acc = math.Max(acc, n)
			default:
				acc += n
			}
		}
		if calc == "mean" {
			acc /= float64(len(nums))
		}
		return acc
	}
	return nums[len(nums)-1] // lastNotNull, Grafana's default
}

// bars is Grafana's bar chart preparation: the first string (or time)
// field gives the categories, every numeric field a series.
func (p panel) bars(frames []dashboard.Frame) (*BarsView, string) {
	if len(frames) == 0 || frames[0].Len() == 0 {
		return nil, msgNoData
	}
	frame := frames[0]
	x := -1
	for i, f := range frame.Fields {
		if f.Type == dashboard.TypeString || f.Type == dashboard.TypeTime {
			x = i
			break
		}
	}
	if x < 0 {
		return nil, msgBarsNeedX
	}
	bv := &BarsView{}
	for _, v := range frame.Fields[x].Values {
		bv.Categories = append(bv.Categories, fmt.Sprint(v))
	}
	for i, f := range frame.Fields {
		if f.Type != dashboard.TypeNumber {
			continue
		}
		cfg := p.fieldConfig(frame, f, "barchart")
		s := BarsSeries{Name: cfg.displayName, Color: cfg.seriesColor(len(bv.Series))}
		for _, v := range f.Values {
			s.Values = append(s.Values, cfg.display("", v, i))
		}
		bv.Series = append(bv.Series, s)
	}
	if len(bv.Series) == 0 {
		return nil, msgNoNumeric
	}
	return bv, ""
}

// table shows the first frame, every field a column.
func (p panel) table(frames []dashboard.Frame) (*TableView, string) {
	if len(frames) == 0 || frames[0].Len() == 0 {
		return nil, msgNoData
	}
	frame := frames[0]
	tv := &TableView{Rows: make([][]string, frame.Len())}
	for i, f := range frame.Fields {
		cfg := p.fieldConfig(frame, f, "table")
		tv.Columns = append(tv.Columns, cfg.displayName)
		tv.Numeric = append(tv.Numeric, f.Type == dashboard.TypeNumber)
		for row, v := range f.Values {
			text := ""
			switch v := v.(type) {
			case float64:
				if f.Type == dashboard.TypeTime {
					text = time.UnixMilli(int64(v)).Format("2006-01-02 15:04:05")
				} else {
					text = cfg.display("", v, i).Text
				}
			case string:
				text = v
			}
			tv.Rows[row] = append(tv.Rows[row], text)
		}
	}
	return tv, ""
}

// series gives a time series panel one series per numeric field of each
// frame that has a time field.
func (p panel) series(frames []dashboard.Frame) ([]SeriesView, string) {
	var out []SeriesView
	timed := false
	for _, frame := range frames {
		var times []float64
		for _, f := range frame.Fields {
			if f.Type == dashboard.TypeTime {
				for _, v := range f.Values {
					t, _ := v.(float64)
					times = append(times, t)
				}
				break
			}
		}
		if times == nil {
			continue
		}
		timed = true
		q := p.target(frame.RefID)
		for _, f := range frame.Fields {
			if f.Type != dashboard.TypeNumber {
				continue
			}
			cfg := p.fieldConfig(frame, f, "timeseries")
			s := SeriesView{Name: cfg.displayName, Color: cfg.seriesColor(len(out)), Unit: cfg.unit, Times: times, Values: f.Values}
			if q != nil && q.Streaming {
				s.Streaming, s.Capacity = true, q.StreamingCapacity
				if s.Capacity == 0 {
					s.Capacity = 1000 // the plugin's DefaultStreamingCapacity
				}
			}
			out = append(out, s)
		}
	}
	if len(out) == 0 {
		if len(frames) == 0 || timed {
			return nil, msgNoData
		}
		return nil, msgSeriesNeedsTS
	}
	return out, ""
}

func (p panel) target(refID string) *dashboard.RedisQuery {
	for _, t := range p.Targets {
		if t.RefID == refID {
			return t.Redis
		}
	}
	return nil
}
