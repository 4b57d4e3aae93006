package fnruntime

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/status"

	"github.com/clima-dev/clima/events"
	"github.com/clima-dev/clima/internal/httpserver"
)

func serveGRPC(ctx context.Context, lis net.Listener, fn *Function, h *health, log *slog.Logger) error {
	srv := grpc.NewServer(
		grpc.MaxRecvMsgSize(events.MaxMessageBytes),
		grpc.ConnectionTimeout(httpserver.ReadHeaderTimeout), // the same bound on a connection's setup
		grpc.KeepaliveParams(keepalive.ServerParameters{MaxConnectionIdle: idleTimeout}),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true}),
		grpcStats(),
	)
	healthpb.RegisterHealthServer(srv, &grpcHealth{h: h})
	fn.GRPC(srv)

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(lis) }()
	log.Info("serving gRPC", "addr", lis.Addr().String())

	select {
	case err := <-errc:
		return fmt.Errorf("serving gRPC: %w", err)
	case <-ctx.Done():
	}
	h.draining.Store(true)
	log.Info("draining in-flight calls")
	drained := make(chan struct{})
	go func() { srv.GracefulStop(); close(drained) }()
	select {
	case <-drained:
		return nil
	case <-time.After(drainTimeout):
		srv.Stop()
		return fmt.Errorf("draining gRPC: calls still running after %s", drainTimeout)
	}
}

// grpcHealth is the standard gRPC health service, answered by the same
// readiness check as an HTTP function's /health/readiness.
type grpcHealth struct {
	healthpb.UnimplementedHealthServer
	h *health
}

func (g *grpcHealth) Check(ctx context.Context, _ *healthpb.HealthCheckRequest) (*healthpb.HealthCheckResponse, error) {
	if err := g.h.check(ctx); err != nil {
		return &healthpb.HealthCheckResponse{Status: healthpb.HealthCheckResponse_NOT_SERVING}, nil
	}
	return &healthpb.HealthCheckResponse{Status: healthpb.HealthCheckResponse_SERVING}, nil
}

func (g *grpcHealth) Watch(*healthpb.HealthCheckRequest, healthpb.Health_WatchServer) error {
	return status.Error(codes.Unimplemented, "watch is not supported; poll Check")
}
