// Package browser starts headless Chromium through the DevTools protocol
// (chromedp), for the dashboard's browser tests and `clima screenshot`, and
// records the errors and warnings the page writes to its console.
package browser

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"sync"

	"github.com/chromedp/chromedp"
)

// InstallHint says how to get Chromium where it is missing.
const InstallHint = "install Chromium with `make deps` (Debian's chromium package) or `apt-get install chromium`, or name a binary with CHROMIUM=/path"

// ExecPath finds Chromium: $CHROMIUM, else the usual names on PATH.
func ExecPath() (string, error) {
	if p := os.Getenv("CHROMIUM"); p != "" {
		return p, nil
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("no Chromium found: %s", InstallHint)
}

// Browser is a headless Chromium with one tab.
type Browser struct {
	// Ctx runs chromedp actions in the tab.
	Ctx    context.Context
	cancel []context.CancelFunc

	mu      sync.Mutex
	console []string
}

// Start starts Chromium with a fresh profile in dataDir and a window of
// width × height. Close stops it.
func Start(ctx context.Context, dataDir string, width, height int) (*Browser, error) {
	path, err := ExecPath()
	if err != nil {
		return nil, err
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.UserDataDir(dataDir),
		chromedp.WindowSize(width, height),
		// As root (CI, containers) Chromium runs only without its sandbox;
		// the closed network refuses its background and QUIC connections.
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	tctx, cancelTab := chromedp.NewContext(actx)
	b := &Browser{Ctx: tctx, cancel: []context.CancelFunc{cancelTab, cancelAlloc}}
	messages := chromedp.Console(tctx) // subscribes now: nothing is missed
	if err := chromedp.Do(tctx, chromedp.Navigate("about:blank")); err != nil {
		b.Close()
		return nil, fmt.Errorf("starting Chromium (%s): %w; %s", path, err, InstallHint)
	}
	go func() {
		for m, err := range messages {
			if err != nil {
				if b.Ctx.Err() == nil {
					b.mu.Lock()
					b.console = append(b.console, "reading the console failed: "+err.Error())
					b.mu.Unlock()
				}
				return
			}
			switch m.Type {
			case chromedp.ConsoleError, chromedp.ConsoleWarning, chromedp.ConsoleException:
				b.mu.Lock()
				b.console = append(b.console, fmt.Sprintf("%s (%s:%d)", m, m.URL, m.Line))
				b.mu.Unlock()
			}
		}
	}()
	return b, nil
}

// Console is every error, warning and uncaught exception of the page so far.
func (b *Browser) Console() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.console...)
}

// Close stops Chromium.
func (b *Browser) Close() {
	for _, c := range b.cancel {
		c()
	}
}
