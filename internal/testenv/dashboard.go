package testenv

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/clima-dev/clima/internal/dashboard"
	"github.com/clima-dev/clima/internal/store"
)

// DashboardStores are the dashboard's datasources (by uid) on real Redis and
// Valkey servers filled through the store writer: 60 reports in clima-redis
// with 2 dead letters, 57 in clima-valkey; the clients are the read-only
// reader's, as Grafana's.
func DashboardStores(t *testing.T) (map[string]*redis.Client, map[string]*Redis) {
	t.Helper()
	clients, servers := map[string]*redis.Client{}, map[string]*Redis{}
	for uid, n := range map[string]int{"clima-redis": 60, "clima-valkey": 57} {
		server := StartRedis(t)
		if uid == "clima-valkey" {
			server = StartValkey(t) // valkey-server, or the stand-in
		}
		servers[uid] = server
		s := OpenStore(t, server.StoreConfig(store.RoleConsumer, uid))
		ctx := context.Background()
		reports := Reports("dashboard", n)
		if _, err := s.SaveAll(ctx, reports, reports[0].AcceptedAt.Add(42*time.Millisecond)); err != nil {
			t.Fatal(err)
		}
		if uid == "clima-redis" {
			for i := range 2 {
				if _, err := OpenStore(t, server.StoreConfig(store.RoleDeadLetter, uid)).RecordDeadLetter(ctx, store.DeadLetter{ID: strconv.Itoa(i), Reason: "clima.weather.reported: 400", Event: []byte("{}")}); err != nil {
					t.Fatal(err)
				}
			}
		}
		url, password := server.As(store.RoleReader)
		c, err := dashboard.Connect(url, "", password)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		clients[uid] = c
	}
	return clients, servers
}
