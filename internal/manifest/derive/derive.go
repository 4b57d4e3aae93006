// Package derive builds, offline, the objects Knative Serving's controllers
// make from a clima Service: its Revision, the Deployment that runs clima's
// container beside queue-proxy, and its Route's Ingress. It runs Serving's
// own reconciler code (pkg/reconciler/.../resources) with the ConfigMaps of
// the release in go.mod, so that what only a cluster would refuse — a probe
// Knative leaves on port 0, a public Service nobody outside can reach — is
// seen by make test.
package derive

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"go.uber.org/zap"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	netv1alpha1 "knative.dev/networking/pkg/apis/networking/v1alpha1"
	"knative.dev/pkg/configmap"
	"knative.dev/pkg/logging"
	apiconfig "knative.dev/serving/pkg/apis/config"
	servingv1 "knative.dev/serving/pkg/apis/serving/v1"
	configresources "knative.dev/serving/pkg/reconciler/configuration/resources"
	revconfig "knative.dev/serving/pkg/reconciler/revision/config"
	revresources "knative.dev/serving/pkg/reconciler/revision/resources"
	routeconfig "knative.dev/serving/pkg/reconciler/route/config"
	routeresources "knative.dev/serving/pkg/reconciler/route/resources"
	"knative.dev/serving/pkg/reconciler/route/traffic"
	"knative.dev/serving/pkg/reconciler/route/visibility"
	serviceresources "knative.dev/serving/pkg/reconciler/service/resources"

	"github.com/clima-dev/clima/internal/manifest"
)

// releaseConfigMaps are the files, per module, of the ConfigMaps a cluster
// starts with (serving-core.yaml is built from them).
var releaseConfigMaps = map[string][]string{
	manifest.ModServing: {"autoscaler", "defaults", "deployment", "domain", "features", "gc", "logging", "observability"},
	// config-network is served from knative.dev/networking in the release.
	manifest.ModNetworking: {"config-network"},
}

// Serving is Knative Serving's configuration, as its controllers load it.
type Serving struct {
	api      *apiconfig.Config
	revision *revconfig.Config
	route    *routeconfig.Config
	logger   *zap.SugaredLogger
}

// Patch is a change to a release ConfigMap (make cluster-deps makes them to
// config-network and config-domain): its data merged in, as kubectl patch
// --type merge does, or put in place of the release's (a JSON patch that
// replaces /data).
type Patch struct {
	ConfigMap string
	Data      map[string]string
	Replace   bool
}

// NewServing loads the release's ConfigMaps from the module cache of the
// module at root, with patches applied.
func NewServing(root string, patches ...Patch) (*Serving, error) {
	mods, err := manifest.Modules(root, manifest.ModServing, manifest.ModNetworking)
	if err != nil {
		return nil, err
	}
	var cms []*corev1.ConfigMap
	byName := map[string]*corev1.ConfigMap{}
	for mod, files := range releaseConfigMaps {
		for _, f := range files {
			dir := filepath.Join(mods[mod].Dir, "config")
			if mod == manifest.ModServing {
				dir = filepath.Join(dir, "core", "configmaps")
			}
			cm, err := manifest.ReadConfigMap(filepath.Join(dir, f+".yaml"))
			if err != nil {
				return nil, err
			}
			cms = append(cms, cm)
			byName[cm.Name] = cm
		}
	}
	for _, p := range patches {
		cm, ok := byName[p.ConfigMap]
		if !ok {
			return nil, fmt.Errorf("patch of ConfigMap %s, which the release does not have", p.ConfigMap)
		}
		if cm.Data == nil || p.Replace {
			cm.Data = map[string]string{}
		}
		for k, v := range p.Data {
			cm.Data[k] = v
		}
	}

	logger := zap.NewNop().Sugar()
	watcher := configmap.NewStaticWatcher(cms...)
	apiStore := apiconfig.NewStore(logger)
	apiStore.WatchConfigs(watcher)
	revStore := revconfig.NewStore(logger)
	revStore.WatchConfigs(watcher)
	routeStore := routeconfig.NewStore(logging.WithLogger(context.Background(), logger))
	routeStore.WatchConfigs(watcher)
	return &Serving{api: apiStore.Load(), revision: revStore.Load(), route: routeStore.Load(), logger: logger}, nil
}

func (s *Serving) context() context.Context {
	ctx := logging.WithLogger(context.Background(), s.logger)
	ctx = apiconfig.ToContext(ctx, s.api)
	ctx = revconfig.ToContext(ctx, s.revision)
	return routeconfig.ToContext(ctx, s.route)
}

// defaulted is the Service as the webhook stores it (SetDefaults).
func (s *Serving) defaulted(svc *servingv1.Service) *servingv1.Service {
	svc = svc.DeepCopy()
	svc.SetDefaults(s.context())
	return svc
}

// Revision is the first Revision of a Service: its Configuration's
// template, as the Configuration reconciler stamps it out.
func (s *Serving) Revision(svc *servingv1.Service) *servingv1.Revision {
	cfg := serviceresources.MakeConfiguration(s.defaulted(svc))
	cfg.Generation = 1
	return configresources.MakeRevision(s.context(), cfg, time.Now())
}

// Deployment is the Deployment the Revision reconciler makes for a
// Service's first Revision: clima's container as Knative rewrites it, and
// queue-proxy beside it.
func (s *Serving) Deployment(svc *servingv1.Service) (*appsv1.Deployment, error) {
	return revresources.MakeDeployment(s.Revision(svc), s.revision)
}

// Ingress is the KIngress the Route reconciler makes for a Service whose
// traffic all goes to its first Revision: a rule per visibility, the
// ExternalIP one only for a Route the domain config makes public.
func (s *Serving) Ingress(svc *servingv1.Service) (*netv1alpha1.Ingress, error) {
	ctx := s.context()
	svc = s.defaulted(svc)
	route := serviceresources.MakeRoute(svc)
	// No placeholder Services exist yet: the visibility is the Route's own.
	noServices := corelisters.NewServiceLister(cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc}))
	vis, err := visibility.NewResolver(noServices).GetVisibility(ctx, route)
	if err != nil {
		return nil, err
	}
	rev := s.Revision(svc)
	percent := int64(100)
	tc := &traffic.Config{
		Targets: map[string]traffic.RevisionTargets{traffic.DefaultTarget: {{
			TrafficTarget: servingv1.TrafficTarget{ConfigurationName: svc.Name, RevisionName: rev.Name, Percent: &percent},
			Protocol:      rev.GetProtocol(),
		}}},
		Visibility: vis,
	}
	// The route reconciler takes the class from config-network.
	return routeresources.MakeIngress(ctx, route, tc, nil, s.route.Network.DefaultIngressClass)
}

// Hosts are the hosts of an Ingress's rules of one visibility.
func Hosts(ing *netv1alpha1.Ingress, v netv1alpha1.IngressVisibility) []string {
	var hosts []string
	for _, r := range ing.Spec.Rules {
		if r.Visibility == v {
			hosts = append(hosts, r.Hosts...)
		}
	}
	return hosts
}
