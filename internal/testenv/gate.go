package testenv

import (
	"net"
	"sync"
)

// Gate controls the connections of a server as faults would: Down cuts them
// all and refuses new ones, as a stopped server does; Hold lets the server
// go on reading but keeps its answers from reaching the client, as a network
// that drops replies does. The zero value lets everything through.
type Gate struct {
	mu    sync.Mutex
	cond  *sync.Cond
	down  bool
	held  bool
	conns map[net.Conn]bool
}

// Down closes every connection and refuses new ones until Up.
func (g *Gate) Down() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.down = true
	for c := range g.conns {
		_ = c.Close()
		delete(g.conns, c)
	}
	g.broadcast()
}

// Up accepts connections again.
func (g *Gate) Up() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.down = false
}

// Hold keeps every answer from reaching its client until Release.
func (g *Gate) Hold() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.held = true
}

// Release lets held answers through.
func (g *Gate) Release() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.held = false
	g.broadcast()
}

func (g *Gate) broadcast() {
	if g.cond != nil {
		g.cond.Broadcast()
	}
}

// Listener wraps a server's listener so that the gate controls what it accepts.
func (g *Gate) Listener(l net.Listener) net.Listener { return &gatedListener{Listener: l, g: g} }

type gatedListener struct {
	net.Listener
	g *Gate
}

func (l *gatedListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if gc := l.g.track(c); gc != nil {
			return gc, nil
		}
	}
}

// track wraps c, or closes it and returns nil while the gate is down.
func (g *Gate) track(c net.Conn) net.Conn {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.down {
		_ = c.Close()
		return nil
	}
	if g.conns == nil {
		g.conns = map[net.Conn]bool{}
		g.cond = sync.NewCond(&g.mu)
	}
	g.conns[c] = true
	return &gatedConn{Conn: c, g: g}
}

// gatedConn is the server's side of a connection: what it writes is an
// answer to the client, and waits while the gate holds.
type gatedConn struct {
	net.Conn
	g *Gate
}

func (c *gatedConn) Write(p []byte) (int, error) {
	c.g.mu.Lock()
	for c.g.held && !c.g.down {
		c.g.cond.Wait()
	}
	down := c.g.down
	c.g.mu.Unlock()
	if down {
		return 0, net.ErrClosed
	}
	return c.Conn.Write(p)
}

func (c *gatedConn) Close() error {
	c.g.mu.Lock()
	delete(c.g.conns, c.Conn)
	c.g.mu.Unlock()
	return c.Conn.Close()
}
