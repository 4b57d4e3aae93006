package coalesce

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"
)

// recorder is a flush that records its batches and can be held.
type recorder struct {
	mu      sync.Mutex
	batches [][]int
	hold    chan struct{} // when set, every flush waits for it to close
	started chan struct{} // receives once per flush that started
	fail    func([]int) error
}

func (r *recorder) flush(_ context.Context, items []int) error {
	r.mu.Lock()
	r.batches = append(r.batches, slices.Clone(items))
	r.mu.Unlock()
	if r.started != nil {
		r.started <- struct{}{}
	}
	if r.hold != nil {
		<-r.hold
	}
	if r.fail != nil {
		return r.fail(items)
	}
	return nil
}

func TestAnIdleGroupFlushesACallAlone(t *testing.T) {
	r := &recorder{}
	g := New(r.flush, Options{MaxItems: 100, MaxInFlight: 1})
	for i := range 3 {
		if err := g.Do(context.Background(), []int{i, i}); err != nil {
			t.Fatal(err)
		}
	}
	want := [][]int{{0, 0}, {1, 1}, {2, 2}}
	if !slices.EqualFunc(r.batches, want, slices.Equal) {
		t.Fatalf("batches %v, want %v", r.batches, want)
	}
}

// busy makes a group whose only slot is taken by a held flush of item -1,
// and returns what releases it.
func busy(t *testing.T, r *recorder, opts Options) (*Group[int], chan error, func()) {
	t.Helper()
	r.hold, r.started = make(chan struct{}), make(chan struct{}, 100)
	g := New(r.flush, opts)
	first := make(chan error, 1)
	go func() { first <- g.Do(context.Background(), []int{-1}) }()
	<-r.started
	return g, first, func() { close(r.hold) }
}

func TestCallsThatWaitGoOutTogether(t *testing.T) {
	r := &recorder{}
	g, first, release := busy(t, r, Options{MaxItems: 5, MaxInFlight: 1})
	results := make(chan error, 4)
	for i := range 4 {
		go func() { results <- g.Do(context.Background(), []int{i * 10, i*10 + 1}) }()
	}
	waitPending(t, g, 4)
	release()
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	for range 4 {
		if err := <-results; err != nil {
			t.Fatal(err)
		}
	}
	// Four waiting calls of two items, at most five items a flush: two
	// flushes of two calls each, after the first one.
	if len(r.batches) != 3 || len(r.batches[1]) != 4 || len(r.batches[2]) != 4 {
		t.Fatalf("batches %v, want [-1] then two of 4 items", r.batches)
	}
	var all []int
	for _, b := range r.batches[1:] {
		all = append(all, b...)
	}
	slices.Sort(all)
	if want := []int{0, 1, 10, 11, 20, 21, 30, 31}; !slices.Equal(all, want) {
		t.Fatalf("flushed %v, want %v", all, want)
	}
}

func TestACallLargerThanMaxItemsGoesOutWhole(t *testing.T) {
	r := &recorder{}
	g := New(r.flush, Options{MaxItems: 2, MaxInFlight: 1})
	if err := g.Do(context.Background(), []int{1, 2, 3}); err != nil {
		t.Fatal(err)
	}
	if len(r.batches) != 1 || len(r.batches[0]) != 3 {
		t.Fatalf("batches %v, want one of 3", r.batches)
	}
}

func TestAFailedFlushFailsEveryCallInIt(t *testing.T) {
	down := errors.New("server down")
	r := &recorder{fail: func([]int) error { return down }}
	g, first, release := busy(t, r, Options{MaxItems: 10, MaxInFlight: 1})
	results := make(chan error, 3)
	for i := range 3 {
		go func() { results <- g.Do(context.Background(), []int{i}) }()
	}
	waitPending(t, g, 3)
	release()
	<-first
	for range 3 {
		if err := <-results; !errors.Is(err, down) {
			t.Fatalf("got %v, want %v", err, down)
		}
	}
	if len(r.batches) != 2 {
		t.Fatalf("%d flushes, want 2 (no isolation without Isolate)", len(r.batches))
	}
}

func TestIsolateFlushesEachCallAlone(t *testing.T) {
	bad := errors.New("item 13 refused")
	r := &recorder{fail: func(items []int) error {
		if slices.Contains(items, 13) {
			return bad
		}
		return nil
	}}
	g, first, release := busy(t, r, Options{MaxItems: 10, MaxInFlight: 1, Isolate: func(err error) bool { return errors.Is(err, bad) }})
	results := map[int]chan error{12: make(chan error, 1), 13: make(chan error, 1), 14: make(chan error, 1)}
	for item, result := range results {
		go func() { result <- g.Do(context.Background(), []int{item}) }()
	}
	waitPending(t, g, 3)
	release()
	<-first
	for item, ch := range results {
		err := <-ch
		if want := map[bool]error{true: bad, false: nil}[item == 13]; !errors.Is(err, want) {
			t.Errorf("item %d: got %v, want %v", item, err, want)
		}
	}
}

func TestMaxInFlightBoundsConcurrentFlushes(t *testing.T) {
	r := &recorder{hold: make(chan struct{}), started: make(chan struct{}, 100)}
	g := New(r.flush, Options{MaxItems: 1, MaxInFlight: 3})
	done := make(chan error, 10)
	for i := range 10 {
		go func() { done <- g.Do(context.Background(), []int{i}) }()
	}
	for range 3 {
		<-r.started
	}
	waitPending(t, g, 7)
	select {
	case <-r.started:
		t.Fatal("a fourth flush started while three were in flight")
	default:
	}
	close(r.hold)
	for range 10 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	if len(r.batches) != 10 {
		t.Fatalf("%d flushes, want 10 of one item", len(r.batches))
	}
}

func TestACallerWhoseContextEndsReturnsAtOnce(t *testing.T) {
	r := &recorder{}
	g, first, release := busy(t, r, Options{MaxItems: 10, MaxInFlight: 1})
	defer func() { release(); <-first }()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.Do(ctx, []int{1}) }()
	waitPending(t, g, 1)
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
}

// waitPending waits until n calls wait for a slot.
func waitPending(t *testing.T, g *Group[int], n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		g.mu.Lock()
		got := len(g.pending)
		g.mu.Unlock()
		if got == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d calls pending after 5s, want %d", got, n)
		}
		time.Sleep(time.Millisecond)
	}
}
