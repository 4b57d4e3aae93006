package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"sort"
	"text/tabwriter"

	"github.com/clima-dev/clima/internal/bench"
	"github.com/clima-dev/clima/internal/local"
)

func benchCmd(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("clima bench", flag.ContinueOnError)
	state := fs.String("state", ".clima", "the folder of a running clima dev (its endpoints.json)")
	reports := fs.Int("reports", 20000, "how many reports to send")
	batch := fs.Int("batch", 1, "reports per event (1: single-report events)")
	concurrency := fs.Int("c", 64, "requests in flight at most")
	rate := fs.Float64("rate", 0, "reports per second to send at (0: as fast as the pipeline takes them)")
	timeout := fs.Duration("timeout", storesTimeout, "how long to wait for the stores after the last send")
	input := fs.Bool("input", false, "post plain JSON to ingest's legacy /input instead of CloudEvents to the Broker")
	hop := fs.Bool("hop", true, "measure a bare net/http hop at the same concurrency too")
	asJSON := fs.Bool("json", false, "print the result as JSON")
	if err := fs.Parse(args); err != nil {
		return err
	}
	e, err := local.ReadEndpoints(*state)
	if err != nil {
		return err
	}
	inputURL := ""
	if *input {
		inputURL = e.Services["ingest"] + "/input"
	}
	res, err := bench.Run(ctx, bench.Config{
		Input:  inputURL,
		Broker: e.Broker, Redis: e.Redis, Valkey: e.Valkey,
		Reports: *reports, Batch: *batch, Concurrency: *concurrency, Rate: *rate,
		Timeout: *timeout, Hop: *hop, Status: e.Status,
	})
	if *asJSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		_ = enc.Encode(res)
	} else {
		printBench(out, res)
	}
	return err
}

func printBench(out io.Writer, r bench.Result) {
	pace := "as fast as taken"
	if r.Rate > 0 {
		pace = fmt.Sprintf("paced at %.0f reports/s", r.Rate)
	}
	fmt.Fprintf(out, "%d reports in requests of %d to the %s, %d in flight, %s\n", r.Reports, r.Batch, r.Target, r.Concurrency, pace)
	fmt.Fprintf(out, "accepted %d in %.2f s", r.Accepted, r.SendSeconds)
	if len(r.Refused) > 0 {
		statuses := make([]string, 0, len(r.Refused))
		for s := range r.Refused {
			statuses = append(statuses, s)
		}
		sort.Strings(statuses)
		fmt.Fprint(out, "; refused:")
		for _, s := range statuses {
			fmt.Fprintf(out, " %d × %s", r.Refused[s], s)
		}
	}
	fmt.Fprintln(out)
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "\tKafka path (Redis)\tRabbitMQ path (Valkey)\t")
	fmt.Fprintf(w, "stored\t%d\t%d\t\n", r.Kafka.Stored, r.RabbitMQ.Stored)
	fmt.Fprintf(w, "all stored after (s)\t%.2f\t%.2f\t\n", r.Kafka.Seconds, r.RabbitMQ.Seconds)
	fmt.Fprintf(w, "latency p50 (ms, at most)\t%s\t%s\t\n", ms(r.Kafka.P50Ms), ms(r.RabbitMQ.P50Ms))
	fmt.Fprintf(w, "latency p90 (ms, at most)\t%s\t%s\t\n", ms(r.Kafka.P90Ms), ms(r.RabbitMQ.P90Ms))
	fmt.Fprintf(w, "latency p99 (ms, at most)\t%s\t%s\t\n", ms(r.Kafka.P99Ms), ms(r.RabbitMQ.P99Ms))
	fmt.Fprintf(w, "traced from the client's send\t%d\t%d\t\n", r.Kafka.Traced, r.RabbitMQ.Traced)
	fmt.Fprintf(w, "  send → stored p50 / p90 (ms)\t%d / %d\t%d / %d\t\n", r.Kafka.SendP50Ms, r.Kafka.SendP90Ms, r.RabbitMQ.SendP50Ms, r.RabbitMQ.SendP90Ms)
	fmt.Fprintf(w, "  send → stored p99 / max (ms)\t%d / %d\t%d / %d\t\n", r.Kafka.SendP99Ms, r.Kafka.SendMaxMs, r.RabbitMQ.SendP99Ms, r.RabbitMQ.SendMaxMs)
	_ = w.Flush()
	fmt.Fprintf(out, "end to end: %.0f reports/s into both stores (%.2f s)\n", r.ReportsPerSecond, r.EndToEndSeconds)
	if len(r.CPU) > 0 {
		fmt.Fprintf(out, "CPU used from first send to last store (the machine was %.0f%% busy):\n", r.Busy*100)
		w := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
		total := 0.0
		for _, u := range r.CPU {
			fmt.Fprintf(w, "  %s\t%.2f s\t%.0f µs/report\t\n", u.Part, u.Seconds, u.MicrosPerReport)
			total += u.MicrosPerReport
		}
		fmt.Fprintf(w, "  all of them\t\t%.0f µs/report\t\n", total)
		_ = w.Flush()
	}
	if r.HopPerSecond > 0 {
		fmt.Fprintf(out, "bare net/http hop here: %.0f requests/s; ratio %.3f\n", r.HopPerSecond, r.HopRatio)
	}
}
