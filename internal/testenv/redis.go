// Package testenv gives tests real servers: redis-server (or valkey-server)
// processes on free ports, the RabbitMQ server, and Kafka embedded with
// kfake. A test that cannot get one fails and says how to get it.
package testenv

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/clima-dev/clima/internal/launch"
	"github.com/clima-dev/clima/internal/store"
)

// Redis is a redis-server process owned by one test, with a user for every
// store role (store.Roles) and an administrator (the default user, whose
// password is Password) for what a test arranges or inspects.
type Redis struct {
	Addr     string
	Password string
	binary   string
	dir      string
	args     []string
	cmd      *exec.Cmd
}

// As is how a client of role connects: a URL that names the role's user,
// and, separately, its password, as a Secret gives it.
func (r *Redis) As(role store.Role) (url, password string) {
	return "redis://" + role.User + "@" + r.Addr, r.rolePassword(role)
}

// StoreConfig is a store on the server written as role's user, keeping
// things for an hour and 1,000 recent reports; tests change what they test.
func (r *Redis) StoreConfig(role store.Role, path string) store.Config {
	url, password := r.As(role)
	return store.Config{URL: url, Password: password, Path: path, Retention: time.Hour, DedupeWindow: time.Hour, RecentMax: 1000}
}

// OpenStore opens the store cfg names, closed when the test ends.
func OpenStore(tb testing.TB, cfg store.Config) *store.Store {
	tb.Helper()
	s, err := store.Open(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = s.Close() })
	return s
}

// ClientAs returns a client logged in as role's user, closed when the test
// ends.
func (r *Redis) ClientAs(t testing.TB, role store.Role) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: r.Addr, Username: role.User, Password: r.rolePassword(role), MaxRetries: -1})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func (r *Redis) rolePassword(role store.Role) string { return r.Password + "-" + role.User }

// StartRedis starts a redis-server on a free port with a password and
// append-only persistence (so a restart keeps its data), and stops it when
// the test ends.
func StartRedis(t testing.TB) *Redis {
	t.Helper()
	return startKeyValue(t, "redis")
}

// StartValkey starts a valkey-server, or a redis-server standing in for it
// when Valkey is not installed.
func StartValkey(t testing.TB) *Redis {
	t.Helper()
	return startKeyValue(t, "valkey")
}

func startKeyValue(t testing.TB, kind string) *Redis {
	t.Helper()
	path, err := launch.KeyValueBinary(kind)
	if err != nil {
		t.Fatalf("%v (make test installs it)", err)
	}
	port := FreePort(t)
	r := &Redis{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), Password: "test-" + strconv.Itoa(os.Getpid()), binary: path, dir: t.TempDir()}
	var users []launch.User
	for _, role := range store.Roles {
		users = append(users, launch.User{Name: role.User, Password: r.rolePassword(role), Rules: role.Rules})
	}
	r.args = launch.KeyValueArgs(port, r.dir, r.Password, users)
	r.Start(t)
	t.Cleanup(func() { r.Stop(t) })
	return r
}

// Start starts the server (again) on its port, with the data it kept, and
// waits until it answers.
func (r *Redis) Start(t testing.TB) {
	t.Helper()
	r.cmd = exec.Command(r.binary, r.args...)
	if err := r.cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", r.binary, err)
	}
	client := r.Client(t)
	defer client.Close()
	Eventually(t, 10*time.Second, func() error {
		return client.Ping(context.Background()).Err()
	}, "%s on %s answers PING (log: %s)", r.binary, r.Addr, filepath.Join(r.dir, "server.log"))
}

// Stop kills the server, as a crash would, and waits for it to exit.
func (r *Redis) Stop(t testing.TB) {
	t.Helper()
	if r.cmd == nil || r.cmd.Process == nil {
		return
	}
	_ = r.cmd.Process.Kill()
	_ = r.cmd.Wait()
	r.cmd = nil
}

// Client returns a client of the server, closed when the test ends.
func (r *Redis) Client(t testing.TB) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: r.Addr, Password: r.Password, MaxRetries: -1})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// FreePort returns a TCP port on 127.0.0.1 that nothing listens on.
func FreePort(t testing.TB) int {
	t.Helper()
	port, err := launch.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return port
}

// Eventually polls cond until it returns nil, and fails the test with the
// last error when timeout passes first.
func Eventually(t testing.TB, timeout time.Duration, cond func() error, format string, args ...any) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waited %s for %s: %v", timeout, fmt.Sprintf(format, args...), err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
