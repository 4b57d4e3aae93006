package wire_test

import (
	"os/exec"
	"strings"
	"testing"
)

// The pipeline's packages take plain values: none of them, nor anything
// they import, reads the environment or knows the function runtime.
func TestPipelinePackagesKnowNoWiring(t *testing.T) {
	const module = "github.com/clima-dev/clima/"
	wiring := []string{module + "internal/config", module + "internal/fnruntime", module + "internal/wire"}
	for _, pkg := range []string{"events", "internal/store", "internal/writer", "internal/consume", "internal/apierr", "internal/coalesce"} {
		out, err := exec.Command("go", "list", "-deps", module+pkg).CombinedOutput()
		if err != nil {
			t.Fatalf("go list -deps %s: %v\n%s", pkg, err, out)
		}
		for _, dep := range strings.Fields(string(out)) {
			for _, w := range wiring {
				if dep == w {
					t.Errorf("%s depends on %s", pkg, w)
				}
			}
			// The HTTP error mapper asks an error for its status: it
			// knows no domain type.
			if pkg == "internal/apierr" && dep == module+"events" {
				t.Errorf("internal/apierr depends on events")
			}
		}
	}
}
