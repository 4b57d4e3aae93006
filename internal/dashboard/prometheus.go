package dashboard

import (
	"context"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/grafana/grafana-foundation-sdk/go/prometheus"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
	"k8s.io/utils/ptr"
)

// PrometheusType is the type of Grafana's Prometheus datasource.
const PrometheusType = "prometheus"

// PromSource is a Prometheus datasource: its API and its scrape interval
// (jsonData.timeInterval), the floor of a query's step.
type PromSource struct {
	API            promv1.API
	ScrapeInterval time.Duration
}

// PromQuery is a Prometheus target as the panel holds it.
type PromQuery struct {
	Expr         string
	LegendFormat string
	// Interval is the query's own floor on the step ("" for none).
	Interval string
	UID      string // the datasource's
}

// maxDataPoints is how many points a query asks for at most: Grafana's
// default for a panel as wide as the local view draws it.
const maxDataPoints = 600

func promTarget(q *prometheus.Dataquery) (Target, string, error) {
	refID := ptr.Deref(q.RefId, "")
	if ptr.Deref(q.Instant, false) && !ptr.Deref(q.Range, true) {
		return Target{}, "instant Prometheus queries", nil
	}
	if f := q.Format; f != nil && *f != prometheus.PromQueryFormatTimeSeries {
		return Target{}, fmt.Sprintf("Prometheus format %q", *f), nil
	}
	pq := &PromQuery{Expr: q.Expr, LegendFormat: ptr.Deref(q.LegendFormat, ""), Interval: ptr.Deref(q.Interval, "")}
	if q.Datasource != nil {
		pq.UID = ptr.Deref(q.Datasource.Uid, "")
	}
	if pq.Interval != "" {
		if _, err := model.ParseDuration(pq.Interval); err != nil {
			return Target{}, "", fmt.Errorf("target %s: interval %q: %w", refID, pq.Interval, err)
		}
	}
	return Target{RefID: refID, Hide: ptr.Deref(q.Hide, false), Prom: pq}, "", nil
}

// step is the interval Grafana's Prometheus datasource queries with: the
// window over maxDataPoints, at least the scrape interval and the query's
// own floor, rounded to whole seconds; rateInterval is $__rate_interval
// (max($__interval + scrape interval, 4 × scrape interval)).
func (q PromQuery) step(window, scrape time.Duration) (step, rateInterval time.Duration) {
	step = max(window/maxDataPoints, scrape)
	if q.Interval != "" {
		floor, _ := model.ParseDuration(q.Interval)
		step = max(step, time.Duration(floor))
	}
	step = step.Round(time.Second)
	return step, max(step+scrape, 4*scrape)
}

// run queries the window up to now and makes one frame per series, as the
// datasource does: a time field, a value field, named by the legend.
func (q PromQuery) run(ctx context.Context, src PromSource, window time.Duration, now time.Time) ([]Frame, error) {
	step, rate := q.step(window, src.ScrapeInterval)
	expr := strings.NewReplacer("$__rate_interval", promDuration(rate), "${__rate_interval}", promDuration(rate),
		"$__interval", promDuration(step), "${__interval}", promDuration(step)).Replace(q.Expr)
	end := now.Truncate(step)
	value, _, err := src.API.QueryRange(ctx, expr, promv1.Range{Start: end.Add(-window), End: end, Step: step})
	if err != nil {
		return nil, err
	}
	matrix, ok := value.(model.Matrix)
	if !ok {
		return nil, fmt.Errorf("a range query answered %s, not a matrix", value.Type())
	}
	frames := make([]Frame, 0, len(matrix))
	for _, series := range matrix {
		times, values := make([]any, len(series.Values)), make([]any, len(series.Values))
		for i, p := range series.Values {
			times[i], values[i] = float64(p.Timestamp), float64(p.Value)
			if math.IsNaN(float64(p.Value)) {
				values[i] = nil
			}
		}
		frames = append(frames, Frame{Name: legend(q.LegendFormat, series.Metric),
			Fields: []Field{{Name: "Time", Type: TypeTime, Values: times}, {Name: "Value", Type: TypeNumber, Values: values}}})
	}
	slices.SortFunc(frames, func(a, b Frame) int { return strings.Compare(a.Name, b.Name) })
	return frames, nil
}

var legendLabel = regexp.MustCompile(`\{\{\s*(.+?)\s*\}\}`)

// legend names a series as Grafana does: legendFormat with {{label}}
// replaced, else the series' labels ({a="x", b="y"}), else the metric name.
func legend(format string, m model.Metric) string {
	if format == "__auto" || format == "" {
		return m.String()
	}
	return legendLabel.ReplaceAllStringFunc(format, func(s string) string {
		return string(m[model.LabelName(legendLabel.FindStringSubmatch(s)[1])])
	})
}

// promDuration is d as PromQL writes a duration (whole seconds).
func promDuration(d time.Duration) string { return strconv.Itoa(int(d.Seconds())) + "s" }
