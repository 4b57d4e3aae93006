// Package coalesce merges concurrent calls into batches (group commit): a
// call that finds a free slot is flushed at once, alone; calls that arrive
// while every slot is busy wait and go out together in the next flush. An
// idle system therefore adds no delay, and a loaded one makes one round trip
// for many callers instead of one each.
package coalesce

import (
	"context"
	"sync"
	"time"
)

// Options bound the batches.
type Options struct {
	// MaxItems is the most items one flush carries (a single call's items
	// always go out whole, even when they are more).
	MaxItems int
	// MaxInFlight is how many flushes run at once.
	MaxInFlight int
	// Timeout bounds one flush. A flush serves many callers, so it does not
	// end with any one caller's context.
	Timeout time.Duration
	// Isolate, when it returns true for a failed flush of several calls,
	// flushes each of them alone, so that one caller's bad items do not
	// fail the others. Leave it nil when every failure is the flush's own
	// (a server down), never an item's.
	Isolate func(error) bool
}

// Group coalesces the calls to one flush function. It is safe for
// concurrent use.
type Group[T any] struct {
	flush func(context.Context, []T) error
	opts  Options

	mu       sync.Mutex
	inFlight int
	pending  []*call[T]
}

type call[T any] struct {
	items []T
	done  chan error
}

// New returns a Group that flushes with flush.
func New[T any](flush func(context.Context, []T) error, opts Options) *Group[T] {
	opts.MaxItems = max(opts.MaxItems, 1)
	opts.MaxInFlight = max(opts.MaxInFlight, 1)
	if opts.Timeout <= 0 {
		opts.Timeout = 30 * time.Second
	}
	return &Group[T]{flush: flush, opts: opts}
}

// Do flushes items, alone or with other callers' items, and returns the
// flush's error. When ctx ends first it returns ctx's error; the items may
// still be flushed.
func (g *Group[T]) Do(ctx context.Context, items []T) error {
	c := &call[T]{items: items, done: make(chan error, 1)}
	g.mu.Lock()
	g.pending = append(g.pending, c)
	if g.inFlight < g.opts.MaxInFlight {
		g.inFlight++
		batch := g.take()
		go g.run(batch)
	}
	g.mu.Unlock()
	select {
	case err := <-c.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// take removes the next batch from the pending calls: at least one call,
// more while they fit in MaxItems. g.mu must be held.
func (g *Group[T]) take() []*call[T] {
	n, size := 0, 0
	for n < len(g.pending) && (n == 0 || size+len(g.pending[n].items) <= g.opts.MaxItems) {
		size += len(g.pending[n].items)
		n++
	}
	batch := g.pending[:n:n]
	g.pending = g.pending[n:]
	return batch
}

// run flushes batch, then whatever piled up meanwhile, until nothing waits.
func (g *Group[T]) run(batch []*call[T]) {
	for {
		g.flushBatch(batch)
		g.mu.Lock()
		if len(g.pending) == 0 {
			g.inFlight--
			g.pending = nil // let the backing array go
			g.mu.Unlock()
			return
		}
		batch = g.take()
		g.mu.Unlock()
	}
}

func (g *Group[T]) flushBatch(batch []*call[T]) {
	items := batch[0].items
	if len(batch) > 1 {
		size := 0
		for _, c := range batch {
			size += len(c.items)
		}
		items = make([]T, 0, size)
		for _, c := range batch {
			items = append(items, c.items...)
		}
	}
	err := g.flushItems(items)
	if err != nil && len(batch) > 1 && g.opts.Isolate != nil && g.opts.Isolate(err) {
		for _, c := range batch {
			c.done <- g.flushItems(c.items)
		}
		return
	}
	for _, c := range batch {
		c.done <- err
	}
}

func (g *Group[T]) flushItems(items []T) error {
	ctx, cancel := context.WithTimeout(context.Background(), g.opts.Timeout)
	defer cancel()
	return g.flush(ctx, items)
}
