package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"maps"
	"slices"
	"text/tabwriter"

	"github.com/redis/go-redis/v9"

	"github.com/clima-dev/clima/internal/local"
	"github.com/clima-dev/clima/internal/store"
)

func stats(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("clima stats", flag.ContinueOnError)
	state := fs.String("state", ".clima", "the folder of a running clima dev (its endpoints.json)")
	// The default is the read-only user clima dev made; REDIS_URL and
	// VALKEY_URL, which name an administrator, are not read.
	redisURL := fs.String("redis", "", "Redis URL of a read-only user (default: from endpoints.json)")
	valkeyURL := fs.String("valkey", "", "Valkey URL of a read-only user (default: from endpoints.json)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *redisURL == "" || *valkeyURL == "" {
		e, err := local.ReadEndpoints(*state)
		if err != nil {
			return fmt.Errorf("no stores to read: start `clima dev` (make run), or pass -redis and -valkey: %w", err)
		}
		*redisURL, *valkeyURL = firstOf(*redisURL, e.Redis), firstOf(*valkeyURL, e.Valkey)
	}
	redisStats, err := readStats(ctx, *redisURL)
	if err != nil {
		return fmt.Errorf("reading Redis: %w", err)
	}
	valkeyStats, err := readStats(ctx, *valkeyURL)
	if err != nil {
		return fmt.Errorf("reading Valkey: %w", err)
	}
	printStats(out, redisStats, valkeyStats)
	return nil
}

func firstOf(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func readStats(ctx context.Context, rawURL string) (store.Stats, error) {
	opts, err := redis.ParseURL(rawURL)
	if err != nil {
		return store.Stats{}, err
	}
	client := redis.NewClient(opts)
	defer client.Close()
	return store.ReadStats(ctx, client)
}

func printStats(out io.Writer, r, v store.Stats) {
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "\tRedis (Kafka path)\tValkey (RabbitMQ path)\t")
	fmt.Fprintf(w, "reports stored\t%d\t%d\t\n", r.Total, v.Total)
	for _, c := range unionKeys(r.Countries, v.Countries) {
		fmt.Fprintf(w, "country %s\t%d\t%d\t\n", c, r.Countries[c], v.Countries[c])
	}
	for _, k := range unionKeys(r.Weathers, v.Weathers) {
		fmt.Fprintf(w, "weather %s\t%d\t%d\t\n", k, r.Weathers[k], v.Weathers[k])
	}
	fmt.Fprintf(w, "latency p50 (ms, at most)\t%s\t%s\t\n", ms(r.Latency.Percentile(0.5)), ms(v.Latency.Percentile(0.5)))
	fmt.Fprintf(w, "latency p99 (ms, at most)\t%s\t%s\t\n", ms(r.Latency.Percentile(0.99)), ms(v.Latency.Percentile(0.99)))
	fmt.Fprintf(w, "latency max (ms)\t%d\t%d\t\n", r.Latency.MaxMs, v.Latency.MaxMs)
	fmt.Fprintf(w, "dead letters\t%d\t%d\t\n", r.DeadLetters, v.DeadLetters)
	_ = w.Flush()
	if r.Total == v.Total && maps.Equal(r.Countries, v.Countries) && maps.Equal(r.Weathers, v.Weathers) {
		fmt.Fprintf(out, "\nThe two paths agree: %d reports in each store, the same per country and per weather.\n", r.Total)
	} else {
		fmt.Fprintf(out, "\nThe two paths differ: Redis holds %d reports, Valkey %d (still in flight, or lost on one path).\n", r.Total, v.Total)
	}
}

func ms(n int64) string {
	if n < 0 {
		return "-"
	}
	return fmt.Sprint(n)
}

func unionKeys(a, b map[string]int64) []string {
	keys := map[string]bool{}
	for k := range a {
		keys[k] = true
	}
	for k := range b {
		keys[k] = true
	}
	return slices.Sorted(maps.Keys(keys))
}
