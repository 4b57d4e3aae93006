// Command clima runs clima on one machine and reports what it stored.
//
//	clima dev     run the whole pipeline locally, from the manifests
//	clima stats   show Redis and Valkey side by side
//	clima bench   measure a running clima dev end to end
//	clima load    run Locust against clima and check the stores
//	clima top     watch Knative's autoscaler decide, per Service
//	clima screenshot  save a picture of the running dashboard
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

const usage = `usage: clima <command> [flags]

commands:
  dev     run the whole pipeline on this machine, from knative/, kafka-source/ and rabbit-source/
  stats   show what Redis and Valkey hold, side by side, and whether the two paths agree
  bench   send reports to a running clima dev and measure the rate and latency into both stores
  load    run Locust (loadtest/locustfile.py) headless, then check each store holds exactly what was accepted (and say what is in doubt)
  top     watch each Service's autoscaler: observed concurrency, desired and ready replicas, panic mode
  screenshot  save a PNG of the dashboard a running clima dev serves, drawn in headless Chromium

Run clima <command> -h for its flags.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "clima:", err)
		stop()
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, usage)
		return fmt.Errorf("no command")
	}
	switch args[0] {
	case "dev":
		return dev(ctx, args[1:])
	case "stats":
		return stats(ctx, args[1:], os.Stdout)
	case "top":
		return top(ctx, args[1:], os.Stdout)
	case "load":
		return load(ctx, args[1:], os.Stdout)
	case "bench":
		return benchCmd(ctx, args[1:], os.Stdout)
	case "screenshot":
		return screenshot(ctx, args[1:], os.Stdout)
	case "-h", "--help", "help":
		fmt.Print(usage)
		return nil
	}
	fmt.Fprint(os.Stderr, usage)
	return fmt.Errorf("unknown command %q", args[0])
}
