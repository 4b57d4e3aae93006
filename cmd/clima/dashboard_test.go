package main

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/redis/go-redis/v9"

	"github.com/clima-dev/clima/internal/browser"
	"github.com/clima-dev/clima/internal/store"
	"github.com/clima-dev/clima/internal/testenv"
)

// dashboardLoad sends reports over 7 countries and 3 weathers, in events
// of 10, and invalid events that end as dead letters.
func dashboardLoad(t *testing.T, d *devRun, want *expected, first, reports, invalid int) {
	t.Helper()
	countries := testenv.Countries[:7]
	var evs []testenv.Event
	for start := first; start < first+reports; start += 10 {
		batch := make([]map[string]string, 0, 10)
		for i := start; i < start+10 && i < first+reports; i++ {
			r := report(i)
			r["country"] = countries[i%len(countries)]
			batch = append(batch, r)
			n := normalised(i)
			n.Country = r["country"]
			want.add(n)
		}
		evs = append(evs, reportedEvent(t, "dashboard-"+strconv.Itoa(start), batch))
	}
	for i := range invalid {
		evs = append(evs, reportedEvent(t, fmt.Sprintf("dashboard-invalid-%d-%d", first, i), map[string]string{"description": "x", "country": "GT", "weather": "granizo"}))
	}
	want.dead += int64(invalid)
	d.sendEvents(t, evs, 8)
	d.awaitStores(t, want, 3*time.Minute)
}

// TestDashboard opens the dashboard `clima dev` serves in headless Chromium
// and checks that every number it shows is the stores', live.
func TestDashboard(t *testing.T) {
	d := startDev(t)
	if d.endpoints.Dashboard == "" || !strings.Contains(d.out.String(), "dashboard       "+d.endpoints.Dashboard) {
		t.Fatalf("clima dev did not print and write its dashboard address (%q):\n%s", d.endpoints.Dashboard, d.out.String())
	}
	want := newExpected()
	dashboardLoad(t, d, want, 0, 1000, 10)

	browser := testenv.Chromium(t)
	if err := chromedp.Do(browser.Ctx, chromedp.Navigate(d.endpoints.Dashboard)); err != nil {
		t.Fatal(err)
	}
	d.awaitPage(t, browser, want)
	// A mark on the page: a reload would lose it.
	if _, err := chromedp.Run(browser.Ctx, chromedp.Evaluate[bool](`window.notReloaded = true`)); err != nil {
		t.Fatal(err)
	}

	dashboardLoad(t, d, want, 1000, 500, 5)
	d.awaitPage(t, browser, want)
	if still, err := chromedp.Run(browser.Ctx, chromedp.Evaluate[bool](`window.notReloaded === true`)); err != nil || !still {
		t.Errorf("the page was reloaded (%v): it must move by itself", err)
	}
	if console := browser.Console(); len(console) > 0 {
		t.Errorf("the browser console has errors:\n%s", strings.Join(console, "\n"))
	}
}

// awaitPage waits until every panel shows what the stores hold, and the
// stores what was sent.
func (d *devRun) awaitPage(t *testing.T, b *browser.Browser, want *expected) {
	t.Helper()
	ctx := context.Background()
	testenv.Eventually(t, time.Minute, func() error {
		panels, err := testenv.ReadDashboard(b)
		if err != nil {
			return err
		}
		if len(panels) != 20 {
			return fmt.Errorf("%d panels on the page, want the 20 of grafana/dashboard.json", len(panels))
		}
		shown := map[string]testenv.ShownPanel{}
		for _, p := range panels {
			if p.Error != "" || p.Message != "" {
				return fmt.Errorf("panel %q shows %q (error %q)", p.Title, p.Message, p.Error)
			}
			shown[p.Title] = p
		}
		var wrong []string
		check := func(title string, got, want any) {
			if fmt.Sprint(got) != fmt.Sprint(want) {
				wrong = append(wrong, fmt.Sprintf("%q shows %v, want %v", title, got, want))
			}
		}
		for _, path := range []struct {
			name, total string
			rdb         *redis.Client
		}{{"Redis", "Reports stored — Redis (Kafka path)", d.redis}, {"Valkey", "Reports stored — Valkey (RabbitMQ path)", d.valkey}} {
			st, err := store.ReadStats(ctx, path.rdb)
			if err != nil {
				return err
			}
			check(path.total, shown[path.total].Stat, []int64{st.Total})
			check(path.total, shown[path.total].Stat, []int64{want.total})
			check("Reports per country — "+path.name, barValues(shown["Reports per country — "+path.name]), st.Countries)
			check("Reports per weather — "+path.name, barValues(shown["Reports per weather — "+path.name]), st.Weathers)
			latest := shown["Latest reports — "+path.name]
			recent, err := path.rdb.XRevRangeN(ctx, store.KeyRecent, "+", "-", 20).Result()
			if err != nil {
				return err
			}
			var ids, shownIDs []string
			for _, e := range recent {
				ids = append(ids, fmt.Sprint(e.Values["id"]))
			}
			for _, row := range latest.Rows {
				col := slices.Index(latest.Columns, "id")
				if col < 0 {
					return fmt.Errorf("the latest reports of %s have no id column: %v", path.name, latest.Columns)
				}
				shownIDs = append(shownIDs, row[col])
			}
			check("Latest reports — "+path.name, shownIDs, ids)
			latency, err := path.rdb.HGetAll(ctx, store.KeyLatency).Result()
			if err != nil {
				return err
			}
			check("End-to-end latency of "+path.name, rowsAsMap(shown["End-to-end latency — "+map[string]string{"Redis": "Kafka", "Valkey": "RabbitMQ"}[path.name]+" path"]), latency)
		}
		check("Redis − Valkey", shown["Redis − Valkey"].Stat, []string{"0"})
		check("Dead letters", shown["Dead letters"].Stat, []int64{want.dead})
		reasons, err := d.redis.HGetAll(ctx, store.KeyDeadReasons).Result()
		if err != nil {
			return err
		}
		var dead int64
		for _, n := range reasons {
			v, _ := strconv.ParseInt(n, 10, 64)
			dead += v
		}
		check("Dead letters by reason", rowsAsMap(shown["Dead letters by reason"]), reasons)
		check("the dead letters by reason in Redis", dead, want.dead)
		check("Live ops/s", shown["Live ops/s"].Legend, []string{"Redis", "Valkey"})
		if len(wrong) > 0 {
			return fmt.Errorf("%s", strings.Join(wrong, "; "))
		}
		return nil
	}, "the dashboard to show what the stores hold")
}

// barValues reads a bar chart as category → the value above its bar.
func barValues(p testenv.ShownPanel) map[string]int64 {
	out := map[string]int64{}
	for _, bar := range p.Bars {
		n, err := strconv.ParseInt(bar[1], 10, 64)
		if err != nil {
			n = -1
		}
		out[bar[0]] = n
	}
	return out
}

// rowsAsMap reads a two-column table as first column → second.
func rowsAsMap(p testenv.ShownPanel) map[string]string {
	out := map[string]string{}
	for _, row := range p.Rows {
		if len(row) == 2 {
			out[row[0]] = row[1]
		}
	}
	return out
}
