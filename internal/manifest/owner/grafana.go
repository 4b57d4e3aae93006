package owner

import (
	"encoding/json"

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
	Name            string            `json:"name"`
	Type            string            `json:"type"`
	Access          string            `json:"access,omitempty"`
	OrgID           int64             `json:"orgId,omitempty"`
	UID             string            `json:"uid"`
	URL             string            `json:"url"`
	User            string            `json:"user,omitempty"`
	Database        string            `json:"database,omitempty"`
	BasicAuth       bool              `json:"basicAuth,omitempty"`
	BasicAuthUser   string            `json:"basicAuthUser,omitempty"`
	WithCredentials bool              `json:"withCredentials,omitempty"`
	IsDefault       bool              `json:"isDefault,omitempty"`
	JSONData        *redisJSONData    `json:"jsonData,omitempty"`
	SecureJSONData  map[string]string `json:"secureJsonData,omitempty"`
	Version         int               `json:"version,omitempty"`
	Editable        bool              `json:"editable,omitempty"`
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

// checkHelmValues checks the datasource provisioning the Grafana chart's
// values carry, strictly, with the redis plugin's settings model. The
// chart publishes no values schema, so the rest of the file is not proved
// offline (docs/deployment.md).
func (c *Checker) checkHelmValues(file string, doc []byte) Result {
	r := Result{File: file, Object: "Helm values grafana", Check: "Grafana's datasource provisioning + redis-datasource settings, strict (no chart schema exists)"}
	var values map[string]json.RawMessage
	if err := json.Unmarshal(doc, &values); err != nil {
		r.Errs = append(r.Errs, err.Error())
		return r
	}
	var datasources map[string]json.RawMessage
	if raw, ok := values["datasources"]; !ok { // case-sensitive, as Helm reads it
		r.Errs = append(r.Errs, "datasources: Required value: the chart provisions no datasource without it")
	} else if err := json.Unmarshal(raw, &datasources); err != nil {
		r.Errs = append(r.Errs, "datasources: "+err.Error())
	}
	for name, raw := range datasources {
		var f struct {
			APIVersion  int                     `json:"apiVersion"`
			Datasources []provisionedDatasource `json:"datasources"`
		}
		for _, e := range strictInto(raw, &f, field.NewPath("datasources", name)) {
			r.Errs = append(r.Errs, e.Error())
		}
	}
	return r
}
