package dashboard

import (
	"fmt"
	"regexp"

	"github.com/expr-lang/expr"
)

// Grafana's server-side math expressions run in Grafana's backend, which is
// not importable as a library; their arithmetic on numbers (+ - * /,
// parentheses, $A / ${A} references), which is what a stat over single
// values uses, is evaluated with github.com/expr-lang/expr, the references
// mapped to identifiers first. Functions (Grafana's run on series) are
// refused when the file is read: expr's built-ins are disabled.

// mathRef is a reference to a query: $A or ${A}.
var mathRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)`)

// refPrefix keeps a query's refId from meeting one of expr's words (in,
// not, and, nil, …) once it is an identifier.
const refPrefix = "ref_"

// mathExpr is a compiled expression: evaluate it with the numbers of the
// queries it references.
type mathExpr func(refs map[string]float64) (float64, error)

func parseMath(s string) (mathExpr, error) {
	src := mathRef.ReplaceAllStringFunc(s, func(ref string) string {
		m := mathRef.FindStringSubmatch(ref)
		return refPrefix + m[1] + m[2]
	})
	program, err := expr.Compile(src, expr.DisableAllBuiltins(), expr.AsFloat64())
	if err != nil {
		return nil, err
	}
	return func(refs map[string]float64) (float64, error) {
		env := make(map[string]any, len(refs))
		for name, v := range refs {
			env[refPrefix+name] = v
		}
		for _, m := range mathRef.FindAllStringSubmatch(s, -1) {
			if _, ok := refs[m[1]+m[2]]; !ok {
				return 0, fmt.Errorf("no number for $%s%s", m[1], m[2])
			}
		}
		out, err := expr.Run(program, env)
		if err != nil {
			return 0, err
		}
		return out.(float64), nil
	}, nil
}
