package testenv

import (
	"context"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/clima-dev/clima/internal/browser"
)

// Chromium starts headless Chromium for the test, or fails saying how to
// install it; it stops when the test ends.
func Chromium(t testing.TB) *browser.Browser {
	t.Helper()
	b, err := browser.Start(context.Background(), t.TempDir(), 1600, 1800)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return b
}

// ShownPanel is what a dashboard panel shows a person: its title, the big
// values of a stat, a bar chart's bars (its category, whose label may be
// shortened on the axis, and the value written above the bar), a table's
// rows, a message in place of the chart, and the legend.
type ShownPanel struct {
	Title   string      `json:"title"`
	Stat    []string    `json:"stat"`
	Bars    [][2]string `json:"bars"`
	Rows    [][]string  `json:"rows"`
	Columns []string    `json:"columns"`
	Message string      `json:"message"`
	Legend  []string    `json:"legend"`
	Error   string      `json:"error"`
}

// readPanels reads the page's panels from the text it shows.
const readPanels = `[...document.querySelectorAll(".panel")].map((s) => {
  const texts = (sel) => [...s.querySelectorAll(sel)].map((e) => e.textContent);

  const badge = s.querySelector(".panel-error");
  return {
    title: s.querySelector(".panel-title").textContent,
    stat: texts(".stat-value"),
    bars: [...s.querySelectorAll("g.bar")].map((g) => [g.dataset.category, g.querySelector(".bar-value").textContent]),
    columns: texts("thead th"),
    rows: [...s.querySelectorAll("tbody tr")].map((tr) => [...tr.children].map((td) => td.textContent)),
    message: texts(".panel-message").join(" "),
    legend: texts(".legend-item, .u-legend .u-series .u-label"),
    error: badge && !badge.hidden ? badge.title : "",
  };
})`

// ReadDashboard opens nothing: it reads the dashboard page the browser
// shows now, panel by panel, in the page's order.
func ReadDashboard(b *browser.Browser) ([]ShownPanel, error) {
	ctx, cancel := context.WithTimeout(b.Ctx, 15*time.Second)
	defer cancel()
	return chromedp.Run(ctx, chromedp.Evaluate[[]ShownPanel](readPanels))
}
