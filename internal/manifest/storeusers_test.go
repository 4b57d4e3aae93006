package manifest_test

import (
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/clima-dev/clima/internal/dashboard"
	"github.com/clima-dev/clima/internal/manifest"
	"github.com/clima-dev/clima/internal/store"
)

// TestStoreUsersAreTheRoles: each store's StatefulSet defines the users of
// store.Roles with exactly their rules (the ones the tests run on real
// servers), and every client in the manifests logs in as the user of its
// role, with that user's password: the consumers, dead-letter, Grafana.
func TestStoreUsersAreTheRoles(t *testing.T) {
	set := load(t)
	roles := map[string]store.Role{}
	for _, r := range store.Roles {
		roles[r.User] = r
	}
	// users: store (StatefulSet) → user → its password's Secret key.
	users := map[string]map[string]string{}
	for _, ss := range set.StatefulSets {
		admin, defined, err := manifest.StoreUsers(ss)
		if err != nil {
			t.Fatal(err)
		}
		users[ss.Name] = map[string]string{"": admin}
		for _, u := range defined {
			role, ok := roles[u.Name]
			if !ok {
				t.Errorf("StatefulSet %s defines user %s, which is no role of store.Roles", ss.Name, u.Name)
			} else if !slices.Equal(u.Rules, role.Rules) {
				t.Errorf("StatefulSet %s: user %s has rules\n%s\nwant store.Role%s's\n%s", ss.Name, u.Name,
					strings.Join(u.Rules, " "), u.Name, strings.Join(role.Rules, " "))
			}
			users[ss.Name][u.Name] = u.PasswordSecret
		}
	}
	wantUsers := map[string][]string{"redis": {"consumer", "dead-letter", "reader"}, "valkey": {"consumer", "reader"}}
	for name, want := range wantUsers {
		var got []string
		for u := range users[name] {
			if u != "" {
				got = append(got, u)
			}
		}
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Errorf("store %s has users %v, want %v", name, got, want)
		}
	}

	// login checks that a client logs in to a store by its URL's host as
	// user, with the password from that user's Secret key.
	login := func(who, rawURL, user, passwordSecret string) {
		u, err := url.Parse(rawURL)
		if err != nil {
			t.Fatalf("%s: %v", who, err)
		}
		storeName, _, _ := strings.Cut(u.Hostname(), ".")
		if _, ok := u.User.Password(); ok {
			t.Errorf("%s: its URL holds a password", who)
		}
		if user == "" {
			user = u.User.Username()
		}
		secret, ok := users[storeName][user]
		if !ok || user == "" {
			t.Errorf("%s logs in to %s as %q, a user it does not have", who, storeName, user)
		} else if secret != passwordSecret {
			t.Errorf("%s logs in as %s with Secret key %s, want %s", who, user, passwordSecret, secret)
		}
	}
	wantRole := map[string]string{"kafka-consumer": "consumer", "rabbit-consumer": "consumer", "dead-letter": "dead-letter"}
	for _, svc := range set.Services {
		values, secrets := manifest.Env(svc)
		if values["STORE_URL"] == "" {
			if _, ok := wantRole[svc.Name]; ok {
				t.Errorf("%s has no STORE_URL", svc.Name)
			}
			continue
		}
		u, _ := url.Parse(values["STORE_URL"])
		if u.User.Username() != wantRole[svc.Name] {
			t.Errorf("%s logs in as %q, want %q", svc.Name, u.User.Username(), wantRole[svc.Name])
		}
		login(svc.Name, values["STORE_URL"], "", secrets["STORE_PASSWORD"])
	}
	sources, err := dashboard.ReadDatasources(filepath.Join(repoRoot(t), "grafana", "values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	stores := 0
	for _, ds := range sources {
		if ds.Type != dashboard.DatasourceType {
			continue // Prometheus: no store, no password
		}
		stores++
		if ds.User != store.RoleReader.User {
			t.Errorf("Grafana's datasource %s logs in as %q, want the read-only %q", ds.UID, ds.User, store.RoleReader.User)
		}
		login("Grafana's datasource "+ds.UID, ds.URL, ds.User, ds.PasswordSecret)
	}
	if stores != 2 {
		t.Errorf("%d Grafana store datasources, want Redis and Valkey", stores)
	}
}
