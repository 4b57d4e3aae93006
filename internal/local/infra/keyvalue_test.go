package infra

import (
	"context"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/clima-dev/clima/internal/manifest"
	"github.com/clima-dev/clima/internal/store"
)

// TestKeyValueServer starts the server standing in for a store, with a
// password and an append-only file, restarts it when it dies unasked, and
// stops it.
func TestKeyValueServer(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	kv, err := StartKeyValue(ctx, testSpec("redis"), "", dir, quiet)
	if err != nil {
		t.Fatalf("starting redis-server: %v", err)
	}
	defer kv.Close()
	if !strings.HasPrefix(kv.addr, "127.0.0.1:") || len(kv.password) != 32 {
		t.Fatalf("server at %q with password %q: want loopback and a 32-character password", kv.addr, kv.password)
	}
	if err := redis.NewClient(&redis.Options{Addr: kv.addr}).Ping(ctx).Err(); err == nil || !strings.Contains(err.Error(), "NOAUTH") {
		t.Fatalf("ping without the password: %v, want NOAUTH", err)
	}
	if len(kv.secrets) != 1+len(store.Roles) || kv.secrets["clima-redis/password"] != kv.password {
		t.Fatalf("local values of the Secret keys: %d, want the administrator's and one per role", len(kv.secrets))
	}
	reader := roleClient(t, kv, store.RoleReader)
	if err := reader.Set(ctx, "k", "v", 0).Err(); err == nil || !strings.Contains(err.Error(), "NOPERM") {
		t.Fatalf("SET as reader: %v, want NOPERM", err)
	}
	client := redis.NewClient(&redis.Options{Addr: kv.addr, Password: kv.password})
	defer client.Close()
	if err := client.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if v, err := reader.Get(ctx, "k").Result(); err != nil || v != "v" {
		t.Fatalf("GET as reader: %q, %v", v, err)
	}
	if aof, err := client.ConfigGet(ctx, "appendfsync").Result(); err != nil || aof["appendfsync"] != "always" {
		t.Fatalf("appendfsync %v (%v), want always", aof, err)
	}

	// Killed, it comes back on the same address with its data.
	first := kv.PID()
	kv.mu.Lock()
	_ = kv.cmd.Process.Kill()
	kv.mu.Unlock()
	if err := pingKeyValue(ctx, kv); err != nil {
		t.Fatalf("after a kill: %v", err)
	}
	if kv.PID() == first {
		t.Fatal("the killed server was not restarted")
	}
	if v, err := client.Get(ctx, "k").Result(); err != nil || v != "v" {
		t.Fatalf("after the restart k = %q (%v), want v from the append-only file", v, err)
	}
	kv.Close()
	if err := client.Ping(ctx).Err(); err == nil {
		t.Fatal("the server still answers after close")
	}
}

// testSpec is a store with a user for every role, as the manifests' are.
func testSpec(name string) KeyValueSpec {
	spec := KeyValueSpec{Name: name, AdminSecret: "clima-" + name + "/password", Grace: 10 * time.Second}
	for _, role := range store.Roles {
		spec.Users = append(spec.Users, manifest.StoreUser{Name: role.User, PasswordSecret: "clima-" + name + "/" + role.User + "-password", Rules: role.Rules})
	}
	return spec
}

// roleClient is a client of kv as role's user, closed when the test ends.
func roleClient(t *testing.T, kv *KeyValue, role store.Role) *redis.Client {
	t.Helper()
	opts, err := redis.ParseURL(kv.URLAs(role.User))
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(opts)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// TestKeyValueServerAtURL: a server found at a URL (REDIS_URL) gets the
// StatefulSet's users, with passwords made here, as a started one does.
func TestKeyValueServerAtURL(t *testing.T) {
	ctx := context.Background()
	started, err := StartKeyValue(ctx, testSpec("redis"), "", t.TempDir(), quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer started.Close()
	admin := (&url.URL{Scheme: "redis", Host: started.addr, User: url.UserPassword("default", started.password)}).String()
	found, err := StartKeyValue(ctx, testSpec("redis"), admin, "", quiet)
	if err != nil {
		t.Fatal(err)
	}
	if found.URLAs("reader") == started.URLAs("reader") {
		t.Fatal("the server at the URL kept its reader's password")
	}
	consumer := roleClient(t, found, store.RoleConsumer)
	if err := consumer.Ping(ctx).Err(); err != nil {
		t.Fatalf("the consumer's user with the new password: %v", err)
	}
	if err := consumer.FlushAll(ctx).Err(); err == nil || !strings.Contains(err.Error(), "NOPERM") {
		t.Fatalf("FLUSHALL as the consumer: %v, want NOPERM", err)
	}
	if err := roleClient(t, started, store.RoleConsumer).Ping(ctx).Err(); err == nil || !strings.Contains(err.Error(), "WRONGPASS") {
		t.Fatalf("the old password: %v, want WRONGPASS", err)
	}
}
