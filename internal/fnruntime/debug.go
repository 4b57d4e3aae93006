package fnruntime

import (
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"
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
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(lis) }()
	log.Info("serving profiles", "addr", lis.Addr().String())
	return func() { _ = srv.Close() }
}
