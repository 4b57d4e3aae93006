// Package launch is what clima dev and the tests share to start servers of
// their own on this machine: a free port, which Redis or Valkey binary with
// which command line, and a process's start and stop.
package launch

import (
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// KeyValueBinary is the server that stands in for store ("redis" or "valkey"):
// valkey-server for Valkey when it is installed, else redis-server.
func KeyValueBinary(store string) (string, error) {
	if store == "valkey" {
		if path, err := exec.LookPath("valkey-server"); err == nil {
			return path, nil
		}
	}
	path, err := exec.LookPath("redis-server")
	if err != nil {
		return "", fmt.Errorf("redis-server is not installed: run `make deps` (or apt-get install redis-server)")
	}
	return path, nil
}

// User is a store user: its name, password and ACL rules.
type User struct {
	Name, Password string
	Rules          []string
}

// ACL is the user's definition after its name, as ACL SETUSER and the user
// directive take it.
func (u User) ACL() []string {
	return append([]string{"on", ">" + u.Password}, u.Rules...)
}

// KeyValueArgs is the command line of a server on 127.0.0.1:port that keeps its
// data in dir, with users and an administrator (the default user) who logs in
// with adminPassword: an append-only file fsynced on every write (a report a
// consumer was told is stored survives a kill of the server), no snapshots,
// in the foreground, logging to dir/server.log.
func KeyValueArgs(port int, dir, adminPassword string, users []User) []string {
	args := []string{"--bind", "127.0.0.1", "--port", strconv.Itoa(port), "--dir", dir, "--requirepass", adminPassword,
		"--appendonly", "yes", "--appendfsync", "always", "--save", "", "--daemonize", "no",
		"--logfile", filepath.Join(dir, "server.log")}
	for _, u := range users {
		args = append(append(args, "--user", u.Name), u.ACL()...)
	}
	return args
}

// FreePort is a TCP port on 127.0.0.1 that nothing listens on now.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("finding a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Start starts cmd in a process group of its own that dies with this
// process, however this one ends; exited is closed once it has exited (its
// ProcessState is then set).
func Start(cmd *exec.Cmd) (exited <-chan struct{}, err error) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	return done, nil
}

// Stop asks a process Start started to exit (SIGTERM), and kills it once
// grace has passed, as the kubelet does with a pod's containers.
func Stop(cmd *exec.Cmd, exited <-chan struct{}, grace time.Duration) {
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(grace):
		_ = cmd.Process.Kill()
		<-exited
	}
}
