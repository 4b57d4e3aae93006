package layout_test

import (
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/clima-dev/clima/"

// pkg is what go list says of one of the module's packages.
type pkg struct {
	ImportPath string
	Imports    []string
	Deps       []string
}

func listPackages(t *testing.T, patterns ...string) []pkg {
	t.Helper()
	cmd := exec.Command("go", append([]string{"list", "-json=ImportPath,Imports,Deps"}, patterns...)...)
	cmd.Dir = filepath.Join("..", "..")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list %v: %v", patterns, err)
	}
	var pkgs []pkg
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for {
		var p pkg
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			return pkgs
		} else if err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
	}
}

var (
	tableRow = regexp.MustCompile("^\\| `([^`]+)` \\| [^|]+ \\| (.+) \\|$")
	quoted   = regexp.MustCompile("`([^`]+)`")
)

// declared reads docs/architecture.md's table: each package and the
// packages of the module it may import.
func declared(t *testing.T) map[string][]string {
	t.Helper()
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "architecture.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(doc), "<!-- layers:begin -->\n")
	table, _, ok2 := strings.Cut(rest, "<!-- layers:end -->")
	if !ok || !ok2 {
		t.Fatal("docs/architecture.md has no layers table")
	}
	rows := map[string][]string{}
	for _, line := range strings.Split(strings.TrimSpace(table), "\n")[2:] {
		m := tableRow.FindStringSubmatch(line)
		if m == nil {
			t.Fatalf("docs/architecture.md: a row the test cannot read: %s", line)
		}
		imports := []string{}
		for _, q := range quoted.FindAllStringSubmatch(m[2], -1) {
			imports = append(imports, q[1])
		}
		rows[m[1]] = imports
	}
	return rows
}

// TestEveryImportIsDeclared: every package of the module has a row in
// docs/architecture.md's table, imports of the module's packages no other
// than its row declares (tests aside), and makes every import its row
// declares: the table is the import graph.
func TestEveryImportIsDeclared(t *testing.T) {
	rows := declared(t)
	seen := map[string]bool{}
	for _, p := range listPackages(t, "./...") {
		name := strings.TrimPrefix(p.ImportPath, module)
		seen[name] = true
		allowed, ok := rows[name]
		if !ok {
			t.Errorf("package %s has no row in docs/architecture.md", name)
			continue
		}
		var own []string
		for _, imp := range p.Imports {
			if rel, ok := strings.CutPrefix(imp, module); ok {
				own = append(own, rel)
				if !slices.Contains(allowed, rel) {
					t.Errorf("%s imports %s, which docs/architecture.md does not declare", name, rel)
				}
			}
		}
		for _, a := range allowed {
			if !slices.Contains(own, a) {
				t.Errorf("docs/architecture.md declares that %s imports %s, which it does not", name, a)
			}
		}
	}
	for name := range rows {
		if !seen[name] {
			t.Errorf("docs/architecture.md has a row for %s, which is no package", name)
		}
	}
}

// TestFunctionsLinkNoPlatform: a function binary links what it runs, not
// the platform's code the CLI and the tests use (Knative's, Kubernetes',
// the embedded Kafka, Grafana's types, the browser).
func TestFunctionsLinkNoPlatform(t *testing.T) {
	heavy := []string{"knative.dev/", "k8s.io/", "sigs.k8s.io/", "github.com/twmb/franz-go", "github.com/grafana/",
		"github.com/chromedp/", "github.com/expr-lang/", "github.com/google/go-containerregistry", module + "internal/local", module + "internal/manifest"}
	fns := listPackages(t, "./functions/...")
	if len(fns) != 8 { // the seven and their shared processes test
		t.Fatalf("%d packages under functions/, want 8", len(fns))
	}
	for _, f := range fns {
		for _, dep := range f.Deps {
			for _, h := range heavy {
				if strings.HasPrefix(dep, h) {
					t.Errorf("%s links %s", strings.TrimPrefix(f.ImportPath, module), dep)
				}
			}
		}
	}
}
