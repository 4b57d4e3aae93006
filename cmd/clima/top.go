package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/clima-dev/clima/internal/local"
	"github.com/clima-dev/clima/internal/local/serving"
)

// top shows, per Service of a running clima dev, what its autoscaler sees
// and decides, refreshed every interval.
func top(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("clima top", flag.ContinueOnError)
	state := fs.String("state", ".clima", "the folder of a running clima dev (its endpoints.json)")
	interval := fs.Duration("interval", time.Second, "how often to refresh")
	once := fs.Bool("once", false, "print once and exit")
	csv := fs.Bool("csv", false, "print one CSV line per Service per refresh (to record a run)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	e, err := local.ReadEndpoints(*state)
	if err != nil {
		return err
	}
	if *csv {
		fmt.Fprintln(out, "time,service,in_flight,stable,panic,kpa,desired,ready,draining,panicking")
	}
	start := time.Now()
	for {
		st, err := local.FetchStatus(ctx, e.Status)
		if err != nil {
			return err
		}
		if *csv {
			printTopCSV(out, st, time.Since(start))
		} else {
			if !*once {
				fmt.Fprint(out, "\033[H\033[2J") // clear the terminal
			}
			printTop(out, st)
		}
		if *once {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(*interval):
		}
	}
}

func sortedServices(st local.Status) []string {
	names := make([]string, 0, len(st.Services))
	for n := range st.Services {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

func printTop(out io.Writer, st local.Status) {
	fmt.Fprintf(out, "clima dev — Knative's KPA per Service, %s\n\n", time.Now().Format(time.TimeOnly))
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "service\tin flight\tstable\tpanic\tKPA\tdesired\tready\tdraining\tmode\t")
	for _, name := range sortedServices(st) {
		s := st.Services[name]
		d := s.Autoscaler
		if d == nil {
			d = &serving.Decision{KPA: -1}
		}
		mode := "stable"
		if d.Panicking {
			mode = "PANIC"
		}
		fmt.Fprintf(w, "%s\t%d\t%.1f\t%.1f\t%s\t%d\t%d\t%d\t%s\t\n", name, s.InFlight, d.Stable, d.Panic, kpa(d.KPA), s.Desired, s.Ready, s.Draining, mode)
	}
	_ = w.Flush()
	fmt.Fprintln(out, "\nstable, panic: the concurrency the KPA averaged over its stable and panic windows; KPA: its decision")
	fmt.Fprintln(out, "(- before it has data); desired: that within min-scale/max-scale and the scale-to-zero grace period.")
}

func kpa(n int32) string {
	if n < 0 {
		return "-"
	}
	return fmt.Sprint(n)
}

func printTopCSV(out io.Writer, st local.Status, since time.Duration) {
	for _, name := range sortedServices(st) {
		s := st.Services[name]
		d := s.Autoscaler
		if d == nil {
			d = &serving.Decision{KPA: -1}
		}
		fmt.Fprintln(out, strings.Join([]string{
			fmt.Sprintf("%.1f", since.Seconds()), name, fmt.Sprint(s.InFlight), fmt.Sprintf("%.2f", d.Stable), fmt.Sprintf("%.2f", d.Panic),
			fmt.Sprint(d.KPA), fmt.Sprint(s.Desired), fmt.Sprint(s.Ready), fmt.Sprint(s.Draining), fmt.Sprint(d.Panicking),
		}, ","))
	}
}
