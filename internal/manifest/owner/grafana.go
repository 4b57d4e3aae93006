package owner

import (
	"encoding/json"
	"maps"
	"slices"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"

	sdkdashboard "github.com/grafana/grafana-foundation-sdk/go/dashboard"

	"github.com/clima-dev/clima/internal/dashboard"
)

// checkDashboard reads the dashboard with Grafana's types, strictly, and
// its redis-datasource targets against the plugin's query model.
func (c *Checker) checkDashboard(file string, data []byte) Result {
	r := Result{File: file, Object: "Dashboard", Check: "grafana-foundation-sdk strict decoding + Validate + redis-datasource query model"}
	b, err := dashboard.Parse(data)
	if err != nil {
		r.Errs = append(r.Errs, err.Error())
		return r
	}
	r.Object = "Dashboard " + b.UID
	// Grafana's types do not check an enum's value when they decode: the
	// constants they declare do.
	var d sdkdashboard.Dashboard
	if err := d.UnmarshalJSONStrict(data); err != nil {
		r.Errs = append(r.Errs, err.Error())
	}
	for _, e := range c.checkEnums(&d) {
		r.Errs = append(r.Errs, e.Error())
	}
	return r
}

// provisionedDatasource is an entry of Grafana's datasource provisioning
// file (apiVersion 1), as Grafana's provisioning reads it
// (pkg/services/provisioning/datasources/types.go, upsertDataSourceFromConfig).
type provisionedDatasource struct {
	Name            string `json:"name"`
	Type            string `json:"type"`
	Access          string `json:"access,omitempty"`
	OrgID           int64  `json:"orgId,omitempty"`
	UID             string `json:"uid"`
	URL             string `json:"url"`
	User            string `json:"user,omitempty"`
	Database        string `json:"database,omitempty"`
	BasicAuth       bool   `json:"basicAuth,omitempty"`
	BasicAuthUser   string `json:"basicAuthUser,omitempty"`
	WithCredentials bool   `json:"withCredentials,omitempty"`
	IsDefault       bool   `json:"isDefault,omitempty"`
	// JSONData is the datasource plugin's settings, read strictly by its
	// type's model (jsonDataModels).
	JSONData       json.RawMessage   `json:"jsonData,omitempty"`
	SecureJSONData map[string]string `json:"secureJsonData,omitempty"`
	Version        int               `json:"version,omitempty"`
	Editable       bool              `json:"editable,omitempty"`
}

// redisJSONData is the redis-datasource plugin's settings model
// (pkg/types.go, dataModel).
type redisJSONData struct {
	PoolSize       int    `json:"poolSize,omitempty"`
	Timeout        int    `json:"timeout,omitempty"`
	PingInterval   int    `json:"pingInterval,omitempty"`
	PipelineWindow int    `json:"pipelineWindow,omitempty"`
	TLSAuth        bool   `json:"tlsAuth,omitempty"`
	TLSSkipVerify  bool   `json:"tlsSkipVerify,omitempty"`
	Client         string `json:"client,omitempty"`
	SentinelName   string `json:"sentinelName,omitempty"`
	ACL            bool   `json:"acl,omitempty"`
	User           string `json:"user,omitempty"`
	SentinelACL    bool   `json:"sentinelAcl,omitempty"`
	SentinelUser   string `json:"sentinelUser,omitempty"`
}

// promJSONData is the settings of Grafana's Prometheus datasource that
// clima sets (public/app/plugins/datasource/prometheus, PromOptions):
// timeInterval is the scrape interval, the floor of a query's step.
type promJSONData struct {
	TimeInterval string `json:"timeInterval,omitempty"`
	HTTPMethod   string `json:"httpMethod,omitempty"`
}

// jsonDataModels are the settings models of the datasource types clima
// provisions.
var jsonDataModels = map[string]func() any{
	"redis-datasource": func() any { return &redisJSONData{} },
	"prometheus":       func() any { return &promJSONData{} },
}

// GrafanaChart is the chart whose values grafanaChartValues follows: the
// Makefile's GRAFANA_CHART_VERSION (a test holds them equal).
const GrafanaChart = "grafana/grafana 10.1.4"

// grafanaChartValues are the values of the grafana chart (GrafanaChart)
// that clima sets, each with the template of grafana/helm-charts
// charts/grafana that reads it. The chart publishes no values schema and
// Helm hands a key no template reads to nothing, silently (a misspelt
// podSecurityContext was dropped that way): decoding strictly into this
// type is what refuses one. Blocks the chart copies into the pod are
// Kubernetes types and decode strictly too.
type grafanaChartValues struct {
	// templates/_pod.tpl: GF_SECURITY_ADMIN_USER and _PASSWORD from the Secret.
	Admin struct {
		ExistingSecret string `json:"existingSecret"`
		UserKey        string `json:"userKey"`
		PasswordKey    string `json:"passwordKey"`
	} `json:"admin"`
	// templates/_config.tpl (joined into the ConfigMap's plugins) and
	// _pod.tpl (GF_INSTALL_PLUGINS from it): "id version" each.
	Plugins []string `json:"plugins"`
	// templates/_pod.tpl: one env entry per key, valueFrom as given.
	EnvValueFrom map[string]corev1.EnvVarSource `json:"envValueFrom"`
	// templates/_config.tpl: one provisioning file per key (checked below).
	Datasources map[string]json.RawMessage `json:"datasources"`
	// templates/_config.tpl: one provisioning file per key.
	DashboardProviders map[string]dashboardProvisioning `json:"dashboardProviders"`
	// templates/_pod.tpl: a ConfigMap mounted per dashboard provider.
	DashboardsConfigMaps map[string]string `json:"dashboardsConfigMaps"`
	// templates/_pod.tpl: the pod's securityContext.
	SecurityContext *corev1.PodSecurityContext `json:"securityContext"`
	// templates/_pod.tpl: the grafana container's securityContext.
	ContainerSecurityContext *corev1.SecurityContext `json:"containerSecurityContext"`
	// templates/_pod.tpl: an emptyDir volume and a mount per entry (name, mountPath).
	ExtraEmptyDirMounts []emptyDirMount `json:"extraEmptyDirMounts"`
	// templates/_pod.tpl: the grafana container's resources.
	Resources *corev1.ResourceRequirements `json:"resources"`
	// templates/service.yaml.
	Service struct {
		Type corev1.ServiceType `json:"type"`
		Port int32              `json:"port"`
	} `json:"service"`
}

// emptyDirMount is an entry of extraEmptyDirMounts.
type emptyDirMount struct {
	Name      string `json:"name"`
	MountPath string `json:"mountPath"`
}

// dashboardProvisioning is Grafana's dashboard provisioning file
// (apiVersion 1, pkg/services/provisioning/dashboards/types.go).
type dashboardProvisioning struct {
	APIVersion int `json:"apiVersion"`
	Providers  []struct {
		Name                  string `json:"name"`
		OrgID                 int64  `json:"orgId,omitempty"`
		Folder                string `json:"folder,omitempty"`
		FolderUID             string `json:"folderUid,omitempty"`
		Type                  string `json:"type"`
		DisableDeletion       bool   `json:"disableDeletion,omitempty"`
		Editable              bool   `json:"editable,omitempty"`
		UpdateIntervalSeconds int64  `json:"updateIntervalSeconds,omitempty"`
		AllowUIUpdates        bool   `json:"allowUiUpdates,omitempty"`
		Options               struct {
			Path                      string `json:"path"`
			FoldersFromFilesStructure bool   `json:"foldersFromFilesStructure,omitempty"`
		} `json:"options"`
	} `json:"providers"`
}

// checkHelmValues checks the Grafana chart's values: every key one the
// chart reads (grafanaChartValues), a writable /tmp when the root
// filesystem is read-only, and the datasource provisioning, strictly, with
// the redis plugin's settings model.
func (c *Checker) checkHelmValues(file string, doc []byte) Result {
	r := Result{File: file, Object: "Helm values grafana", Check: "the " + GrafanaChart + " chart's values as its templates read them + Grafana's provisioning + redis-datasource settings, strict"}
	var values grafanaChartValues
	for _, e := range strictInto(doc, &values, nil) {
		r.Errs = append(r.Errs, e.Error())
	}
	if values.Datasources == nil { // case-sensitive, as Helm reads it
		r.Errs = append(r.Errs, "datasources: Required value: the chart provisions no datasource without it")
	}
	if sc := values.ContainerSecurityContext; sc != nil && sc.ReadOnlyRootFilesystem != nil && *sc.ReadOnlyRootFilesystem &&
		!slices.ContainsFunc(values.ExtraEmptyDirMounts, func(m emptyDirMount) bool { return m.MountPath == "/tmp" }) {
		r.Errs = append(r.Errs, "extraEmptyDirMounts: Required value: the root filesystem is read-only (containerSecurityContext.readOnlyRootFilesystem) "+
			"and Grafana downloads a plugin through a temporary file (os.CreateTemp, pkg/plugins/repo): mount an emptyDir at /tmp")
	}
	for name, raw := range values.Datasources {
		var f struct {
			APIVersion  int                     `json:"apiVersion"`
			Datasources []provisionedDatasource `json:"datasources"`
		}
		path := field.NewPath("datasources", name)
		for _, e := range strictInto(raw, &f, path) {
			r.Errs = append(r.Errs, e.Error())
		}
		for i, ds := range f.Datasources {
			model, ok := jsonDataModels[ds.Type]
			if !ok {
				r.Errs = append(r.Errs, field.NotSupported(path.Child("datasources").Index(i).Child("type"), ds.Type, slices.Sorted(maps.Keys(jsonDataModels))).Error())
				continue
			}
			if len(ds.JSONData) > 0 {
				for _, e := range strictInto(ds.JSONData, model(), path.Child("datasources").Index(i).Child("jsonData")) {
					r.Errs = append(r.Errs, e.Error())
				}
			}
		}
	}
	return r
}
