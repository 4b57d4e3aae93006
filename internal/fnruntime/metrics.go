package fnruntime

import (
	"net"
	"net/http"
	"strconv"
	"strings"

	"github.com/gorilla/mux"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc/filters"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"google.golang.org/grpc"
)

// instrumentHTTP records otelhttp's http.server.* instruments for every
// request but the probes, with the route's template as http.route (a path
// no route matched has none: its values are the client's, unbounded) and
// this server's name and port as server.address and server.port, which
// otelhttp would otherwise take from the client's Host header.
func instrumentHTTP(router *mux.Router, port int) http.Handler {
	router.Use(func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if tpl, err := mux.CurrentRoute(r).GetPathTemplate(); err == nil {
				if labeler, ok := otelhttp.LabelerFromContext(r.Context()); ok {
					labeler.Add(semconv.HTTPRoute(tpl))
				}
			}
			next.ServeHTTP(w, r)
		})
	})
	return otelhttp.NewHandler(router, "clima",
		otelhttp.WithServerName(net.JoinHostPort("clima", strconv.Itoa(port))),
		otelhttp.WithFilter(func(r *http.Request) bool { return !strings.HasPrefix(r.URL.Path, "/health/") }))
}

// grpcStats records otelgrpc's rpc.server.* instruments for every call but
// the health checks.
func grpcStats() grpc.ServerOption {
	return grpc.StatsHandler(otelgrpc.NewServerHandler(otelgrpc.WithFilter(filters.Not(filters.HealthCheck()))))
}
