package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/clima-dev/clima/internal/browser"
	"github.com/clima-dev/clima/internal/local"
)

// screenshot saves a picture of a running clima dev's dashboard, as a
// person sees it in a browser, -settle after opening it (the panels draw
// within a second; the streamed time series gathers a point a second).
func screenshot(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("clima screenshot", flag.ContinueOnError)
	state := fs.String("state", ".clima", "the state folder of the running clima dev")
	file := fs.String("o", "docs/dashboard.png", "where to write the PNG")
	width := fs.Int("width", 1600, "browser window width in pixels")
	height := fs.Int("height", 1400, "browser window height in pixels (the whole page is taken)")
	settle := fs.Duration("settle", 6*time.Second, "how long the live panels draw before the picture (the time series needs a few points)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	e, err := local.ReadEndpoints(*state)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "clima-chromium-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	b, err := browser.Start(ctx, dir, *width, *height)
	if err != nil {
		return err
	}
	defer b.Close()
	if err := chromedp.Do(b.Ctx, chromedp.Navigate(e.Dashboard), chromedp.Sleep(*settle)); err != nil {
		return fmt.Errorf("opening %s: %w", e.Dashboard, err)
	}
	png, err := chromedp.Run(b.Ctx, chromedp.FullScreenshot(100))
	if err != nil {
		return err
	}
	if console := b.Console(); len(console) > 0 {
		return fmt.Errorf("the page logged errors: %v", console)
	}
	if err := os.WriteFile(*file, png, 0o644); err != nil {
		return err
	}
	fmt.Fprintf(out, "wrote %s (%d bytes) from %s\n", *file, len(png), e.Dashboard)
	return nil
}
