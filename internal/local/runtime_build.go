package local

import (
	"context"
	"fmt"
	"os/exec"
	"path"
	"path/filepath"
	"time"

	"github.com/clima-dev/clima/internal/manifest"
)

// build compiles every Service's ko:// main package with go build (cached).
func (r *runtime) build(ctx context.Context) error {
	args := []string{"build", "-o", filepath.Join(r.opts.StateDir, "bin") + "/"}
	for _, s := range r.set.Services {
		importPath, ok := manifest.ImportPath(s)
		if !ok {
			return fmt.Errorf("service %s: image is not a ko:// reference", s.Name)
		}
		if path.Base(importPath) != s.Name {
			return fmt.Errorf("service %s: its package %s must be named after it", s.Name, importPath)
		}
		args = append(args, importPath)
	}
	start := time.Now()
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = r.opts.Root
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("building the functions: %v\n%s", err, out)
	}
	r.log.Info("built the functions", "count", len(r.set.Services), "took", time.Since(start).Round(time.Millisecond).String())
	return nil
}
