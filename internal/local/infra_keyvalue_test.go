package local

import (
	"context"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
)

// TestKeyValueServer starts the server standing in for a store, with a
// password and an append-only file, restarts it when it dies unasked, and
// stops it.
func TestKeyValueServer(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	kv, err := startKeyValue(ctx, "redis", "", dir, quiet)
	if err != nil {
		t.Fatalf("starting redis-server: %v", err)
	}
	defer kv.close()
	if !strings.HasPrefix(kv.addr, "127.0.0.1:") || len(kv.password) != 32 {
		t.Fatalf("server at %q with password %q: want loopback and a 32-character password", kv.addr, kv.password)
	}
	if err := redis.NewClient(&redis.Options{Addr: kv.addr}).Ping(ctx).Err(); err == nil || !strings.Contains(err.Error(), "NOAUTH") {
		t.Fatalf("ping without the password: %v, want NOAUTH", err)
	}
	opts, err := redis.ParseURL(kv.URL())
	if err != nil {
		t.Fatal(err)
	}
	client := redis.NewClient(opts)
	defer client.Close()
	if err := client.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if aof, err := client.ConfigGet(ctx, "appendfsync").Result(); err != nil || aof["appendfsync"] != "always" {
		t.Fatalf("appendfsync %v (%v), want always", aof, err)
	}

	// Killed, it comes back on the same address with its data.
	first := kv.pid()
	kv.mu.Lock()
	_ = kv.cmd.Process.Kill()
	kv.mu.Unlock()
	if err := pingKeyValue(ctx, kv); err != nil {
		t.Fatalf("after a kill: %v", err)
	}
	if kv.pid() == first {
		t.Fatal("the killed server was not restarted")
	}
	if v, err := client.Get(ctx, "k").Result(); err != nil || v != "v" {
		t.Fatalf("after the restart k = %q (%v), want v from the append-only file", v, err)
	}
	kv.close()
	if err := client.Ping(ctx).Err(); err == nil {
		t.Fatal("the server still answers after close")
	}
}
