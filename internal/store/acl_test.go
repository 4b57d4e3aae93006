package store_test

import (
	"context"
	"crypto/sha1"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/clima-dev/clima/internal/store"
	"github.com/clima-dev/clima/internal/testenv"
)

// TestRolesOnRealServers: each store user can do what its role needs and is
// refused the rest, by Redis and by Valkey (or the stand-in): the reader
// (Grafana, the dashboard, clima stats) cannot write, the writers cannot
// run admin commands, touch the other's keys or call, from a script, a
// command their own script does not call.
func TestRolesOnRealServers(t *testing.T) {
	type attempt struct {
		name string
		args []any
		load string // a script the administrator loads first
	}
	refusedToAll := []attempt{
		{"FLUSHALL", []any{"flushall"}, ""},
		{"FLUSHDB", []any{"flushdb"}, ""},
		{"CONFIG SET", []any{"config", "set", "maxmemory", "1"}, ""},
		{"ACL SETUSER", []any{"acl", "setuser", "intruder", "on", ">x", "+@all", "~*"}, ""},
		{"SHUTDOWN", []any{"shutdown", "nosave"}, ""},
		{"CLIENT LIST", []any{"client", "list"}, ""},
		{"BGREWRITEAOF", []any{"bgrewriteaof"}, ""},
		{"SCRIPT FLUSH", []any{"script", "flush"}, ""},
		{"PUBLISH", []any{"publish", "clima", "x"}, ""},
	}
	// script is a script of the user's own, loaded by the administrator and
	// run by EVALSHA, which both writers may send.
	script := func(call string, key string) attempt {
		src := "return redis.call('" + call + "', KEYS[1], '1')"
		return attempt{"a script calling " + call, []any{"evalsha", fmt.Sprintf("%x", sha1.Sum([]byte(src))), 1, key}, src}
	}
	refused := map[string][]attempt{
		store.RoleReader.User: {
			{"SET", []any{"set", store.KeyTotal, "1"}, ""},
			{"DEL", []any{"del", store.KeyTotal}, ""},
			{"HINCRBY", []any{"hincrby", store.KeyCountryCounts, "GT", "1"}, ""},
			{"XADD", []any{"xadd", store.KeyRecent, "*", "id", "x"}, ""},
			{"EXPIRE", []any{"expire", store.KeyTotal, "1"}, ""},
			{"EVAL", []any{"eval", "return 1", 0}, ""},
			{"KEYS", []any{"keys", "*"}, ""},
		},
		store.RoleConsumer.User: {
			{"GET (not a command of save.lua)", []any{"get", store.KeyTotal}, ""},
			{"SET on a key outside its patterns", []any{"set", "other", "1"}, ""},
			{"SET on dead-letter's counter", []any{"set", store.KeyDeadLetters, "1"}, ""},
			{"KEYS", []any{"keys", "*"}, ""},
			{"EVAL (save.lua runs by EVALSHA)", []any{"eval", "return 1", 0}, ""},
			script("DEL", store.KeyTotal),
			script("INCRBY", store.KeyDeadLetters),
		},
		store.RoleDeadLetter.User: {
			{"SET on the report counter", []any{"set", store.KeyTotal, "1"}, ""},
			{"HGETALL", []any{"hgetall", store.KeyDeadReasons}, ""},
			{"SCRIPT LOAD", []any{"script", "load", "return 1"}, ""},
			script("SET", store.KeyTotal),
			script("EXPIRE", store.KeyDeadLetters),
		},
	}
	allowed := map[string][]attempt{
		store.RoleReader.User: {
			{"GET", []any{"get", store.KeyTotal}, ""},
			{"HGETALL", []any{"hgetall", store.KeyCountryCounts}, ""},
			{"XREVRANGE", []any{"xrevrange", store.KeyRecent, "+", "-", "COUNT", "1"}, ""},
			{"INFO", []any{"info", "memory"}, ""},
			{"TTL", []any{"ttl", store.KeyTotal}, ""},
		},
		store.RoleConsumer.User:   {script("SET", "clima:seen:x")},
		store.RoleDeadLetter.User: {script("SET", "clima:dead_seen:x")},
	}
	for _, srv := range servers() {
		t.Run(srv.name, func(t *testing.T) {
			ctx := context.Background()
			r := srv.start(t)
			// Each writer stores through its own user, as in a deployment.
			consumer := testenv.OpenStore(t, r.StoreConfig(store.RoleConsumer, "kafka"))
			if n, err := consumer.SaveAll(ctx, testenv.Reports("roles", 3), time.Now()); n != 3 || err != nil {
				t.Fatalf("the consumer's user stored %d, %v; want 3", n, err)
			}
			deadLetter := testenv.OpenStore(t, r.StoreConfig(store.RoleDeadLetter, "dead-letter"))
			if ok, err := deadLetter.RecordDeadLetter(ctx, store.DeadLetter{ID: "x", Reason: "test", Event: []byte("{}")}); !ok || err != nil {
				t.Fatalf("the dead-letter user recorded %v, %v", ok, err)
			}
			if st, err := store.ReadStats(ctx, r.ClientAs(t, store.RoleReader)); err != nil || st.Total != 3 || st.DeadLetters != 1 {
				t.Fatalf("the reader read %+v, %v; want 3 reports and 1 dead letter", st, err)
			}
			admin := r.Client(t)
			for _, role := range store.Roles {
				client := r.ClientAs(t, role)
				for _, a := range append(refusedToAll, refused[role.User]...) {
					if a.load != "" {
						if err := admin.ScriptLoad(ctx, a.load).Err(); err != nil {
							t.Fatal(err)
						}
					}
					if err := client.Do(ctx, a.args...).Err(); !refusedByACL(err) {
						t.Errorf("%s ran %s: %v, want a refusal by its ACL rules", role.User, a.name, err)
					}
				}
				for _, a := range allowed[role.User] {
					if a.load != "" {
						if err := admin.ScriptLoad(ctx, a.load).Err(); err != nil {
							t.Fatal(err)
						}
					}
					if err := client.Do(ctx, a.args...).Err(); err != nil && err != redis.Nil {
						t.Errorf("%s was refused %s: %v", role.User, a.name, err)
					}
				}
			}
			if st, _ := store.ReadStats(ctx, admin); st.Total != 3 || st.DeadLetters != 1 {
				t.Errorf("after the refusals the store holds %+v; want it unchanged", st)
			}
		})
	}
}

// refusedByACL tells the servers' refusals for want of a right: NOPERM for a
// command or key, and this error for a command a script calls.
func refusedByACL(err error) bool {
	return err != nil && (strings.HasPrefix(err.Error(), "NOPERM ") ||
		strings.Contains(err.Error(), "The user executing the script can't run this command"))
}
