package fnruntime

import (
	"github.com/clima-dev/clima/internal/httpserver"
	"log/slog"
	"net"
	"net/http"
)

// serveDebug serves Go's profiles at addr, on a listener of its own so that
// they are never reachable through the function's port. Functions serve it
// only when DEBUG_ADDR is set (clima dev -debug does; no manifest does).
func serveDebug(addr string, log *slog.Logger) (stop func()) {
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		log.Warn("not serving profiles", "addr", addr, "error", err)
		return func() {}
	}
	mux := http.NewServeMux()
	httpserver.Profiles(mux)
	srv := httpserver.New(mux)
	go func() { _ = srv.Serve(lis) }()
	log.Info("serving profiles", "addr", lis.Addr().String())
	return func() { _ = srv.Close() }
}
