package local

import (
	"context"
	"path/filepath"
	"slices"
	"time"

	"github.com/clima-dev/clima/internal/dashboard"
	"github.com/clima-dev/clima/internal/launch"
	"github.com/clima-dev/clima/internal/telemetry"
)

// selfService labels clima dev's own metrics: the KPA's instruments, the
// pod counts and the data plane's deliveries, as a cluster's autoscaler
// and Broker export theirs.
const selfService = "clima-dev"

// targetsRefresh is how often Prometheus' targets follow the replicas.
const targetsRefresh = 250 * time.Millisecond

// startMetrics serves clima dev's own metrics and starts a Prometheus
// that scrapes them and every replica, its data under dataDir.
func (r *runtime) startMetrics(ctx context.Context, dataDir string) (err error) {
	self := telemetry.Config{Protocol: telemetry.ProtocolPrometheus, Endpoint: "127.0.0.1:0"}
	if r.opts.NoMetrics {
		self = telemetry.Config{Protocol: telemetry.ProtocolNone}
	}
	if r.telemetry, err = telemetry.Start(self, selfService, r.log); err != nil || r.opts.NoMetrics {
		return err
	}
	r.prometheus, err = launch.StartPrometheus(ctx, filepath.Join(dataDir, "prometheus"), r.log)
	return err
}

// promSource is the dashboard's Prometheus datasource: none without metrics.
func (r *runtime) promSource() dashboard.PromSource {
	if r.prometheus == nil {
		return dashboard.PromSource{}
	}
	return dashboard.PromSource{API: r.prometheus.API(), ScrapeInterval: launch.ScrapeInterval}
}

// targets are what Prometheus scrapes now: clima dev, and each replica on
// its own address, labelled with its Service as a cluster's scrape
// configuration labels a pod.
func (r *runtime) targets() []launch.TargetGroup {
	groups := []launch.TargetGroup{{Targets: []string{r.telemetry.Addr()}, Labels: map[string]string{"service": selfService}}}
	for _, s := range r.set.Services {
		if targets := r.services[s.Name].MetricsTargets(); len(targets) > 0 {
			slices.Sort(targets)
			groups = append(groups, launch.TargetGroup{Targets: targets, Labels: map[string]string{"service": s.Name, "namespace": s.Namespace}})
		}
	}
	return groups
}

// followReplicas rewrites Prometheus' targets whenever the replicas change,
// until ctx ends.
func (r *runtime) followReplicas(ctx context.Context) {
	tick := time.NewTicker(targetsRefresh)
	defer tick.Stop()
	var written []launch.TargetGroup
	for {
		if groups := r.targets(); !slices.EqualFunc(groups, written, sameGroup) {
			if err := r.prometheus.SetTargets(groups); err != nil {
				r.log.Error("writing Prometheus' targets", "error", err)
			} else {
				written = groups
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

func sameGroup(a, b launch.TargetGroup) bool {
	return slices.Equal(a.Targets, b.Targets) && a.Labels["service"] == b.Labels["service"]
}
