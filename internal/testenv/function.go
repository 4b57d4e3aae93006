package testenv

import (
	"context"
	"log/slog"
	"net"
	"testing"

	"github.com/clima-dev/clima/internal/fnruntime"
)

// ServeFunction serves a built function on a free loopback port, as the
// function runtime serves it in a pod, until the test ends; it returns the
// function's base URL.
func ServeFunction(t *testing.T, fn *fnruntime.Function, log *slog.Logger) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- fnruntime.Serve(ctx, lis, fn, log) }()
	t.Cleanup(func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("serving the function: %v", err)
		}
	})
	return "http://" + lis.Addr().String()
}
