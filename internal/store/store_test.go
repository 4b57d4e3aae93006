package store_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/clima-dev/clima/events"
	"github.com/clima-dev/clima/internal/store"
	"github.com/clima-dev/clima/internal/testenv"
)

// TestSaveGroups: groups of reports — larger than one script call, with
// repeats inside a group and groups that overlap — leave every report
// stored once and every counter exact, on Redis and on Valkey.
func TestSaveGroups(t *testing.T) {
	for _, srv := range servers() {
		t.Run(srv.name, func(t *testing.T) {
			ctx := context.Background()
			s := openStore(t, srv.start, "kafka", 100)

			reports := testenv.Reports("group", 2500) // three script calls
			accepted := time.Now().Add(-30 * time.Millisecond)
			for i := range reports {
				reports[i].AcceptedAt = accepted
			}
			first := append(append([]events.Report{}, reports[:1500]...), reports[:10]...) // repeats inside
			if n, err := s.SaveAll(ctx, first, time.Now()); err != nil || n != 1500 {
				t.Fatalf("first group: stored %d, %v; want 1500", n, err)
			}
			if n, err := s.SaveAll(ctx, reports[1000:], time.Now()); err != nil || n != 1000 { // overlaps 500
				t.Fatalf("overlapping group: stored %d, %v; want 1000", n, err)
			}
			if n, err := s.SaveAll(ctx, reports, time.Now()); err != nil || n != 0 {
				t.Fatalf("repeated group: stored %d, %v; want 0", n, err)
			}

			st, err := store.ReadStats(ctx, s.Client())
			if err != nil {
				t.Fatal(err)
			}
			wantCountries, wantWeathers := map[string]int64{}, map[string]int64{}
			for _, r := range reports {
				wantCountries[r.Country]++
				wantWeathers[string(r.Weather)]++
			}
			if st.Total != 2500 || fmt.Sprint(st.Countries) != fmt.Sprint(wantCountries) || fmt.Sprint(st.Weathers) != fmt.Sprint(wantWeathers) {
				t.Fatalf("stats %d %v %v, want 2500 %v %v", st.Total, st.Countries, st.Weathers, wantCountries, wantWeathers)
			}
			var buckets int64
			for _, n := range st.Latency.Buckets {
				buckets += n
			}
			if st.Latency.Count != 2500 || buckets != 2500 || st.Latency.MaxMs < 30 || st.Latency.SumMs < 2500*30 {
				t.Errorf("latency %+v, want 2500 reports of at least 30 ms in the buckets", st.Latency)
			}
			for _, r := range []events.Report{reports[0], reports[1499], reports[2499]} {
				h, err := s.Client().HGetAll(ctx, store.ReportKey(r.Country, r.ID)).Result()
				if err != nil || h["id"] != r.ID || h["description"] != r.Description || h["weather"] != string(r.Weather) || h["path"] != "kafka" {
					t.Errorf("report %s stored as %v (%v)", r.ID, h, err)
				}
			}
			newest, err := s.Client().XRevRangeN(ctx, store.KeyRecent, "+", "-", 100).Result()
			if err != nil || len(newest) != 100 {
				t.Fatalf("%s: %d entries (%v), want at least its cap of 100", store.KeyRecent, len(newest), err)
			}
			for i, entry := range newest {
				if want := reports[2499-i].ID; entry.Values["id"] != want {
					t.Fatalf("%s entry %d from the newest is %v, want %s", store.KeyRecent, i, entry.Values["id"], want)
				}
			}
		})
	}
}

// TestSaveWritesNothingWhenAKeyIsWrong: a shared key of the wrong type fails
// the script before its first write, so no report is half-stored (a retry
// would otherwise skip reports whose counters were never added).
func TestSaveWritesNothingWhenAKeyIsWrong(t *testing.T) {
	for _, srv := range servers() {
		t.Run(srv.name, func(t *testing.T) {
			ctx := context.Background()
			s := openStore(t, srv.start, "kafka", 100)
			if err := s.Client().Set(ctx, store.KeyRecent, "not a stream", 0).Err(); err != nil {
				t.Fatal(err)
			}
			reports := testenv.Reports("wrong-key", 10)
			n, err := s.SaveAll(ctx, reports, time.Now())
			if n != 0 || err == nil || !strings.Contains(err.Error(), "clima: clima:recent is a string, want a stream") {
				t.Fatalf("stored %d, %v; want 0 and the script's refusal", n, err)
			}
			if keys, _ := s.Client().Keys(ctx, "*").Result(); len(keys) != 1 {
				t.Fatalf("the refused script wrote %v", keys)
			}
			if err := s.Client().Del(ctx, store.KeyRecent).Err(); err != nil {
				t.Fatal(err)
			}
			if n, err := s.SaveAll(ctx, reports, time.Now()); n != 10 || err != nil {
				t.Fatalf("after the fix: stored %d, %v; want all 10", n, err)
			}
		})
	}
}
