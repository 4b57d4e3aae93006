package infra

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	corev1 "k8s.io/api/core/v1"

	"github.com/clima-dev/clima/internal/launch"
	"github.com/clima-dev/clima/internal/manifest"
)

// KeyValue is a Redis or Valkey server: found at a URL, or started here
// and restarted whenever it exits, as its StatefulSet would restart it. It
// has the users its StatefulSet defines, each with a password made here.
type KeyValue struct {
	name string // the StatefulSet it stands in for
	addr string
	// admin and password are the administrator's: the default user of a
	// server started here, the user of a REDIS_URL / VALKEY_URL.
	admin, password string
	users           []launch.User
	// secrets are the local values of the Secret keys ("name/key") the
	// StatefulSet reads its passwords from.
	secrets map[string]string
	binary  string
	args    []string
	grace   time.Duration // SIGTERM to SIGKILL
	log     *slog.Logger

	mu      sync.Mutex
	cmd     *exec.Cmd
	exited  <-chan struct{}
	closing bool
}

// KeyValueSpec is what a store's StatefulSet says of its server: its name,
// its users with where their passwords come from, and its pod's grace
// period (terminationGracePeriodSeconds).
type KeyValueSpec struct {
	Name        string
	AdminSecret string
	Users       []manifest.StoreUser
	// Grace is SIGTERM to SIGKILL; zero, a spec that names none, is
	// Kubernetes' default (30 s).
	Grace time.Duration
}

// URLAs is the server's address with user's name and password, for the
// clients of that user's role; "" when the server has no such user.
func (kv *KeyValue) URLAs(user string) string {
	for _, u := range kv.users {
		if u.Name == user {
			return (&url.URL{Scheme: "redis", Host: kv.addr, User: url.UserPassword(u.Name, u.Password)}).String()
		}
	}
	return ""
}

// StartKeyValue uses the server at rawURL (its administrator's), or starts
// one for the StatefulSet: valkey-server for "valkey" when installed,
// redis-server otherwise, with append-only persistence under dir. Either way
// the server gets the StatefulSet's users, with random passwords.
func StartKeyValue(ctx context.Context, spec KeyValueSpec, rawURL, dir string, log *slog.Logger) (*KeyValue, error) {
	kv := &KeyValue{name: spec.Name, secrets: map[string]string{}, grace: spec.Grace}
	if kv.grace == 0 {
		kv.grace = corev1.DefaultTerminationGracePeriodSeconds * time.Second
	}
	for _, u := range spec.Users {
		user := launch.User{Name: u.Name, Password: randomHex(16), Rules: u.Rules}
		kv.users = append(kv.users, user)
		kv.secrets[u.PasswordSecret] = user.Password
	}
	if rawURL != "" {
		u, err := url.Parse(rawURL)
		if err != nil {
			return nil, fmt.Errorf("%s URL: %w", spec.Name, err)
		}
		kv.addr = u.Host
		kv.admin = u.User.Username()
		kv.password, _ = u.User.Password()
		kv.secrets[spec.AdminSecret] = kv.password
		if err := pingKeyValue(ctx, kv); err != nil {
			return nil, err
		}
		return kv, kv.defineUsers(ctx)
	}
	path, err := launch.KeyValueBinary(spec.Name)
	if err != nil {
		return nil, fmt.Errorf("%w, or set %s_URL", err, strings.ToUpper(spec.Name))
	}
	port, err := launch.FreePort()
	if err != nil {
		return nil, err
	}
	data := filepath.Join(dir, spec.Name)
	if err := os.MkdirAll(data, 0o700); err != nil {
		return nil, err
	}
	kv.addr = "127.0.0.1:" + strconv.Itoa(port)
	kv.password = randomHex(16)
	kv.secrets[spec.AdminSecret] = kv.password
	kv.binary, kv.log = path, log
	kv.args = launch.KeyValueArgs(port, data, kv.password, kv.users)
	if err := kv.start(); err != nil {
		return nil, err
	}
	if err := pingKeyValue(ctx, kv); err != nil {
		kv.Close()
		return nil, err
	}
	log.Info("started "+filepath.Base(path), "stands_in_for", spec.Name, "addr", kv.addr, "data", data, "users", len(kv.users))
	return kv, nil
}

// defineUsers makes a server found at a URL have exactly the users of its
// StatefulSet, as the server started here has them from its command line.
func (kv *KeyValue) defineUsers(ctx context.Context) error {
	client := kv.adminClient()
	defer client.Close()
	for _, u := range kv.users {
		args := []any{"acl", "setuser", u.Name, "reset"}
		for _, a := range u.ACL() {
			args = append(args, a)
		}
		if err := client.Do(ctx, args...).Err(); err != nil {
			return fmt.Errorf("%s at %s: defining user %s: %w", kv.name, kv.addr, u.Name, err)
		}
	}
	return nil
}

// start runs the server and restarts it when it exits unasked.
func (kv *KeyValue) start() error {
	cmd := exec.Command(kv.binary, kv.args...)
	exited, err := launch.Start(cmd)
	if err != nil {
		return fmt.Errorf("starting %s: %w", kv.binary, err)
	}
	kv.mu.Lock()
	kv.cmd, kv.exited = cmd, exited
	kv.mu.Unlock()
	go func() {
		<-exited
		kv.mu.Lock()
		closing := kv.closing
		kv.mu.Unlock()
		if closing {
			return
		}
		kv.log.Warn("store server exited; restarting it", "stands_in_for", kv.name, "state", cmd.ProcessState.String())
		time.Sleep(keyValueRestartDelay)
		if err := kv.start(); err != nil {
			kv.log.Error("restarting store server", "stands_in_for", kv.name, "error", err)
		}
	}()
	return nil
}

// PID is the running server's process id, 0 when it was not started here.
func (kv *KeyValue) PID() int {
	kv.mu.Lock()
	defer kv.mu.Unlock()
	if kv.cmd == nil || kv.cmd.Process == nil {
		return 0
	}
	return kv.cmd.Process.Pid
}

// keyValueRestartDelay is the pause before a store server that died
// unasked is started again, so that one crashing at once does not spin.
const keyValueRestartDelay = 100 * time.Millisecond

// keyValueStartTimeout bounds the wait for a store server to answer PING:
// one started here replays its append-only file first.
const keyValueStartTimeout = 15 * time.Second

func pingKeyValue(ctx context.Context, kv *KeyValue) error {
	client := kv.adminClient()
	defer client.Close()
	deadline := time.Now().Add(keyValueStartTimeout)
	for {
		err := client.Ping(ctx).Err()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("%s at %s does not answer within %s: %w", kv.name, kv.addr, keyValueStartTimeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (kv *KeyValue) adminClient() *redis.Client {
	return redis.NewClient(&redis.Options{Addr: kv.addr, Username: kv.admin, Password: kv.password})
}

// Addr is the server's host:port.
func (kv *KeyValue) Addr() string { return kv.addr }

// Secrets are the local values of the Secret keys ("name/key") the
// StatefulSet reads its users' passwords from.
func (kv *KeyValue) Secrets() map[string]string { return kv.secrets }

// Close stops a server started here, as the kubelet stops its pod.
func (kv *KeyValue) Close() {
	kv.mu.Lock()
	kv.closing = true
	cmd, exited := kv.cmd, kv.exited
	kv.mu.Unlock()
	if cmd == nil || cmd.Process == nil {
		return
	}
	launch.Stop(cmd, exited, kv.grace)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Redact hides the password of a URL.
func Redact(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}
