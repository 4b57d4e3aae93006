package local

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/clima-dev/clima/internal/dashboard"
	"github.com/clima-dev/clima/internal/dashboard/view"
	"github.com/clima-dev/clima/internal/httpserver"
)

// dashboardServer serves grafana/dashboard.json over the local stores,
// reached through the datasources grafana/values.yaml provisions.
type dashboardServer struct {
	url    string
	server *http.Server
	stores map[string]*redis.Client
}

// startDashboard provisions the datasources as the cluster's Grafana does
// (their URLs rewritten to the local servers, passwords from the same
// Secret keys; a Prometheus datasource is clima dev's Prometheus, prom) and
// serves the dashboard on addr.
func startDashboard(root, addr string, rewrite *strings.Replacer, secrets map[string]string, prom dashboard.PromSource, log *slog.Logger) (*dashboardServer, error) {
	sources, err := dashboard.ReadDatasources(filepath.Join(root, "grafana", "values.yaml"))
	if err != nil {
		return nil, err
	}
	d := &dashboardServer{stores: map[string]*redis.Client{}}
	proms := map[string]dashboard.PromSource{}
	for _, ds := range sources {
		if ds.Type == dashboard.PrometheusType && prom.API != nil {
			proms[ds.UID] = prom
		}
		if ds.Type != dashboard.DatasourceType {
			continue
		}
		password := ""
		if ds.PasswordSecret != "" {
			var ok bool
			if password, ok = secrets[ds.PasswordSecret]; !ok {
				return nil, fmt.Errorf("grafana datasource %s: no local value for Secret key %s", ds.UID, ds.PasswordSecret)
			}
		}
		client, err := dashboard.Connect(rewrite.Replace(ds.URL), ds.User, password)
		if err != nil {
			return nil, fmt.Errorf("grafana datasource %s: %w", ds.UID, err)
		}
		d.stores[ds.UID] = client
	}
	srv, err := view.NewServer(filepath.Join(root, "grafana", "dashboard.json"), dashboard.Datasources{Stores: d.stores, Prometheus: proms}, log)
	if err != nil {
		d.close(context.Background())
		return nil, err
	}
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		// Port 3000 is Grafana's own and often taken: the dashboard is not
		// worth failing the whole runtime for; the banner prints where it is.
		log.Warn("the dashboard's address is taken; using a free port (set -dashboard-addr)", "addr", addr, "error", err)
		if lis, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			d.close(context.Background())
			return nil, fmt.Errorf("listening for the dashboard: %w", err)
		}
	}
	d.url = "http://" + lis.Addr().String() + "/"
	d.server = httpserver.New(srv.Handler())
	d.server.WriteTimeout, d.server.IdleTimeout = 30*time.Second, 2*time.Minute
	go func() { _ = d.server.Serve(lis) }()
	return d, nil
}

func (d *dashboardServer) close(ctx context.Context) {
	if d.server != nil {
		_ = d.server.Shutdown(ctx)
	}
	for _, c := range d.stores {
		_ = c.Close()
	}
}
