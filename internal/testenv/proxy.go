package testenv

import (
	"io"
	"net"
	"net/url"
	"testing"
)

// Proxy forwards TCP connections to a server through a Gate, so that a test
// can stop the server, or hold its answers, as the client sees it.
type Proxy struct {
	Addr string
	Gate
}

// StartProxy listens on a free port and forwards to target until the test ends.
func StartProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("starting proxy: %v", err)
	}
	p := &Proxy{Addr: lis.Addr().String()}
	gated := p.Gate.Listener(lis)
	go func() {
		for {
			client, err := gated.Accept()
			if err != nil {
				return
			}
			go forward(client, target)
		}
	}()
	t.Cleanup(func() { _ = lis.Close(); p.Down() })
	return p
}

// forward pipes client to target; client is the gated side, so what the
// server answers passes the gate.
func forward(client net.Conn, target string) {
	server, err := net.Dial("tcp", target)
	if err != nil {
		_ = client.Close()
		return
	}
	go func() {
		_, _ = io.Copy(server, client)
		_ = server.Close()
	}()
	_, _ = io.Copy(client, server)
	_ = client.Close()
}

// ProxyURL starts a proxy to the host of a server URL (amqp://…, redis://…)
// and returns the URL that goes through it.
func ProxyURL(t testing.TB, rawURL string) (string, *Proxy) {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatalf("parsing %q: %v", rawURL, err)
	}
	p := StartProxy(t, u.Host)
	u.Host = p.Addr
	return u.String(), p
}
