package dashboard

import (
	"fmt"
	"os"
	"strings"

	"github.com/redis/go-redis/v9"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// Datasource is a datasource the Grafana Helm values provision
// (grafana/values.yaml), with where its password comes from in a cluster.
type Datasource struct {
	UID, Type, URL string
	// User is the store user it logs in as (jsonData.user, with
	// jsonData.acl), or "" for the server's default user.
	User string
	// PasswordSecret is the Secret key ("name/key") the password is read
	// from through the chart's envValueFrom, or "" for none.
	PasswordSecret string
}

// helmValues is the part of the grafana chart's values that provisions
// datasources.
type helmValues struct {
	EnvValueFrom map[string]corev1.EnvVarSource `json:"envValueFrom"`
	Datasources  map[string]struct {
		Datasources []struct {
			UID      string `json:"uid"`
			Type     string `json:"type"`
			URL      string `json:"url"`
			JSONData struct {
				ACL  bool   `json:"acl"`
				User string `json:"user"`
			} `json:"jsonData"`
			SecureJSONData map[string]string `json:"secureJsonData"`
		} `json:"datasources"`
	} `json:"datasources"`
}

// ReadDatasources reads the datasources the Helm values file provisions.
func ReadDatasources(valuesPath string) ([]Datasource, error) {
	data, err := os.ReadFile(valuesPath)
	if err != nil {
		return nil, err
	}
	var v helmValues
	if err := yaml.Unmarshal(data, &v); err != nil {
		return nil, fmt.Errorf("%s: %w", valuesPath, err)
	}
	var out []Datasource
	for _, file := range v.Datasources {
		for _, ds := range file.Datasources {
			d := Datasource{UID: ds.UID, Type: ds.Type, URL: ds.URL}
			if ds.JSONData.ACL {
				d.User = ds.JSONData.User
			}
			if password := ds.SecureJSONData["password"]; password != "" {
				// Grafana expands $VAR in provisioning files from its env.
				env, ok := strings.CutPrefix(password, "$")
				src, found := v.EnvValueFrom[env]
				if !ok || !found || src.SecretKeyRef == nil {
					return nil, fmt.Errorf("%s: datasource %s: the password must be $VAR with VAR in envValueFrom from a Secret", valuesPath, ds.UID)
				}
				d.PasswordSecret = src.SecretKeyRef.Name + "/" + src.SecretKeyRef.Key
			}
			out = append(out, d)
		}
	}
	return out, nil
}

// Connect opens a client of a datasource as the plugin connects: as user
// ("" for the default user), over RESP2 (radix), so replies keep the
// server's order (HGETALL as a flat array).
func Connect(rawURL, user, password string) (*redis.Client, error) {
	opts, err := redis.ParseURL(rawURL)
	if err != nil {
		return nil, err
	}
	if user != "" {
		opts.Username = user
	}
	if password != "" {
		opts.Password = password
	}
	opts.Protocol = 2
	opts.PoolSize = 5 // the datasource's jsonData.poolSize
	return redis.NewClient(opts), nil
}
