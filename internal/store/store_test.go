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

// exactlyOncePerID: groups of reports — larger than one script call, with
// repeats inside a group and groups that overlap — leave every report
// stored once, its hash whole, every counter exact and the stream capped.
func exactlyOncePerID(t *testing.T, start func(testing.TB) *testenv.Redis) {
	ctx := context.Background()
	s := openStore(t, start, store.RoleConsumer, "kafka", 100)

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

	st, err := store.ReadStats(ctx, s.reader)
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
		h, err := s.reader.HGetAll(ctx, store.ReportKey(r.Country, r.ID)).Result()
		if err != nil || h["id"] != r.ID || h["description"] != r.Description || h["weather"] != string(r.Weather) || h["path"] != "kafka" {
			t.Errorf("report %s stored as %v (%v)", r.ID, h, err)
		}
	}
	newest, err := s.reader.XRevRangeN(ctx, store.KeyRecent, "+", "-", 100).Result()
	if err != nil || len(newest) != 100 {
		t.Fatalf("%s: %d entries (%v), want at least its cap of 100", store.KeyRecent, len(newest), err)
	}
	for i, entry := range newest {
		if want := reports[2499-i].ID; entry.Values["id"] != want {
			t.Fatalf("%s entry %d from the newest is %v, want %s", store.KeyRecent, i, entry.Values["id"], want)
		}
	}
}

// allOrNothingPerReport: a shared key of the wrong type fails the script
// before its first write, so no report is half-stored (a retry would
// otherwise skip reports whose counters were never added).
func allOrNothingPerReport(t *testing.T, start func(testing.TB) *testenv.Redis) {
	ctx := context.Background()
	s := openStore(t, start, store.RoleConsumer, "kafka", 100)
	if err := s.admin.Set(ctx, store.KeyRecent, "not a stream", 0).Err(); err != nil {
		t.Fatal(err)
	}
	reports := testenv.Reports("wrong-key", 10)
	n, err := s.SaveAll(ctx, reports, time.Now())
	if n != 0 || err == nil || !strings.Contains(err.Error(), "clima: clima:recent is a string, want a stream") {
		t.Fatalf("stored %d, %v; want 0 and the script's refusal", n, err)
	}
	if keys, _ := s.admin.Keys(ctx, "*").Result(); len(keys) != 1 {
		t.Fatalf("the refused script wrote %v", keys)
	}
	if err := s.admin.Del(ctx, store.KeyRecent).Err(); err != nil {
		t.Fatal(err)
	}
	if n, err := s.SaveAll(ctx, reports, time.Now()); n != 10 || err != nil {
		t.Fatalf("after the fix: stored %d, %v; want all 10", n, err)
	}
}

// TestStoreContract is what the consumers and dead-letter rely on from a
// store, run against Redis and against Valkey (a second redis-server stands
// in, labelled so, when valkey-server is not installed).
func TestStoreContract(t *testing.T) {
	cases := []struct {
		name string
		run  func(*testing.T, func(testing.TB) *testenv.Redis)
	}{
		{"exactly once per id", exactlyOncePerID},
		{"all or nothing per report", allOrNothingPerReport},
		{"latency buckets", latencyBuckets},
		{"retention", retention},
		{"dead letters once per id", deadLettersOncePerID},
		{"out of memory refused up front", outOfMemoryRefusedUpFront},
		{"a restarted server's empty script cache", scriptCacheFlushed},
	}
	for _, srv := range servers() {
		t.Run(srv.name, func(t *testing.T) {
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) { c.run(t, srv.start) })
			}
		})
	}
}

// latencyBuckets: each report counts once in the first bucket that holds its
// latency from acceptance to storage; a clock behind counts as 0 ms.
func latencyBuckets(t *testing.T, start func(testing.TB) *testenv.Redis) {
	ctx := context.Background()
	s := openStore(t, start, store.RoleConsumer, "rabbitmq", 100)
	storedAt := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	reports := testenv.Reports("latency", 5)
	for i, ago := range []time.Duration{-time.Second, time.Millisecond, 3 * time.Millisecond, 40 * time.Millisecond, 45 * time.Second} {
		reports[i].AcceptedAt = storedAt.Add(-ago)
	}
	if n, err := s.SaveAll(ctx, reports, storedAt); n != 5 || err != nil {
		t.Fatalf("stored %d, %v; want 5", n, err)
	}
	st, err := store.ReadStats(ctx, s.reader)
	if err != nil {
		t.Fatal(err)
	}
	want := store.Latency{Count: 5, SumMs: 0 + 1 + 3 + 40 + 45000, MaxMs: 45000,
		Buckets: map[string]int64{"le_1": 2, "le_5": 1, "le_50": 1, "le_inf": 1}}
	if fmt.Sprint(st.Latency) != fmt.Sprint(want) {
		t.Errorf("latency %+v, want %+v", st.Latency, want)
	}
	h, err := s.reader.HGetAll(ctx, store.ReportKey(reports[3].Country, reports[3].ID)).Result()
	if err != nil || h["latency_ms"] != "40" || h["stored_at"] != "2026-12-01T12:00:00Z" || h["path"] != "rabbitmq" {
		t.Errorf("report hash %v (%v)", h, err)
	}
}

// retention: a report's hash expires after the retention, its dedupe
// marker after the (longer) dedupe window; the counters never expire.
func retention(t *testing.T, start func(testing.TB) *testenv.Redis) {
	ctx := context.Background()
	r := start(t)
	cfg := r.StoreConfig(store.RoleConsumer, "kafka")
	cfg.DedupeWindow = 3 * time.Hour
	s := testenv.OpenStore(t, cfg)
	rep := testenv.Reports("retention", 1)
	if n, err := s.SaveAll(ctx, rep, time.Now()); n != 1 || err != nil {
		t.Fatalf("stored %d, %v", n, err)
	}
	for key, want := range map[string]time.Duration{
		store.ReportKey(rep[0].Country, rep[0].ID): time.Hour,
		"clima:seen:" + rep[0].ID:                  3 * time.Hour,
		store.KeyTotal:                             -1, // no expiry
		store.KeyCountryCounts:                     -1,
	} {
		ttl, err := r.ClientAs(t, store.RoleReader).TTL(ctx, key).Result()
		if err != nil {
			t.Fatal(err)
		}
		if want < 0 && ttl != -1 || want > 0 && (ttl <= want-time.Minute || ttl > want) {
			t.Errorf("%s expires in %v, want %v", key, ttl, want)
		}
	}
}

// deadLettersOncePerID: a dead letter is kept whole and counted once per
// id, with its reason; a redelivery of it changes nothing.
func deadLettersOncePerID(t *testing.T, start func(testing.TB) *testenv.Redis) {
	ctx := context.Background()
	s := openStore(t, start, store.RoleDeadLetter, "dead-letter", 100)
	first := store.DeadLetter{ID: "src\n1", Reason: "400 from ingest", Event: []byte(`{"id":"1"}`)}
	for i, c := range []struct {
		d    store.DeadLetter
		want bool
	}{{first, true}, {first, false}, {store.DeadLetter{ID: "src\n2", Reason: "400 from ingest", Event: []byte(`{"id":"2"}`)}, true}} {
		if got, err := s.RecordDeadLetter(ctx, c.d); got != c.want || err != nil {
			t.Fatalf("dead letter %d: recorded %v, %v; want %v", i, got, err, c.want)
		}
	}
	st, err := store.ReadStats(ctx, s.reader)
	if err != nil {
		t.Fatal(err)
	}
	reasons, _ := s.reader.HGetAll(ctx, store.KeyDeadReasons).Result()
	kept, _ := s.reader.XRange(ctx, store.KeyDeadStream, "-", "+").Result()
	if st.DeadLetters != 2 || fmt.Sprint(reasons) != "map[400 from ingest:2]" || len(kept) != 2 || kept[0].Values["event"] != `{"id":"1"}` {
		t.Errorf("dead letters %d, reasons %v, stream %v; want 2 kept whole", st.DeadLetters, reasons, kept)
	}
}

// outOfMemoryRefusedUpFront: a server out of memory refuses the whole
// script before it runs (its shebang makes it a writing script), so no
// report is half-stored; once memory is back, the same call stores them.
func outOfMemoryRefusedUpFront(t *testing.T, start func(testing.TB) *testenv.Redis) {
	ctx := context.Background()
	s := openStore(t, start, store.RoleConsumer, "kafka", 100)
	warm := testenv.Reports("warm", 1)
	if _, err := s.SaveAll(ctx, warm, time.Now()); err != nil {
		t.Fatal(err)
	}
	before, _ := s.reader.DBSize(ctx).Result()
	if err := s.admin.ConfigSet(ctx, "maxmemory", "1").Err(); err != nil {
		t.Fatal(err)
	}
	reports := testenv.Reports("oom", 10)
	n, err := s.SaveAll(ctx, reports, time.Now())
	if n != 0 || err == nil || !strings.Contains(err.Error(), "OOM") {
		t.Fatalf("out of memory: stored %d, %v; want 0 and an OOM refusal", n, err)
	}
	if after, _ := s.reader.DBSize(ctx).Result(); after != before {
		t.Fatalf("the refused call wrote: %d keys, %d before", after, before)
	}
	if err := s.admin.ConfigSet(ctx, "maxmemory", "0").Err(); err != nil {
		t.Fatal(err)
	}
	if n, err := s.SaveAll(ctx, reports, time.Now()); n != 10 || err != nil {
		t.Fatalf("memory back: stored %d, %v; want 10", n, err)
	}
}

// scriptCacheFlushed: a server that lost its script cache (a restart)
// answers NOSCRIPT once; the store loads the script and stores, once.
func scriptCacheFlushed(t *testing.T, start func(testing.TB) *testenv.Redis) {
	ctx := context.Background()
	s := openStore(t, start, store.RoleConsumer, "kafka", 100)
	if _, err := s.SaveAll(ctx, testenv.Reports("before-flush", 3), time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := s.admin.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if n, err := s.SaveAll(ctx, testenv.Reports("after-flush", 3), time.Now()); n != 3 || err != nil {
		t.Fatalf("after SCRIPT FLUSH: stored %d, %v; want 3", n, err)
	}
	if st, _ := store.ReadStats(ctx, s.reader); st.Total != 6 {
		t.Errorf("total %d, want 6", st.Total)
	}
}
