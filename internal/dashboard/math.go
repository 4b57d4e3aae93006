package dashboard

import (
	"fmt"
	"regexp"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/parser"
	"github.com/expr-lang/expr/vm"
)

// Grafana's server-side math expressions run in Grafana's backend, which is
// not importable as a library; their arithmetic on numbers (+ - * /, unary
// minus, parentheses, $A / ${A} references), which is what a stat over
// single values uses, is evaluated with github.com/expr-lang/expr, the
// references mapped to identifiers first. Everything else expr knows
// (functions, %, **, comparisons, bare names) is refused when the file is
// read, so that what the view draws is what Grafana would compute.

// mathRef is a reference to a query: $A or ${A}.
var mathRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)`)

// refPrefix keeps a query's refId from meeting one of expr's words (in,
// not, and, nil, …) once it is an identifier.
const refPrefix = "ref_"

// mathExpr is a compiled expression: evaluate it with the numbers of the
// queries it references.
type mathExpr func(refs map[string]float64) (float64, error)

func parseMath(s string) (mathExpr, error) {
	var names []string
	env := map[string]float64{}
	src := mathRef.ReplaceAllStringFunc(s, func(ref string) string {
		m := mathRef.FindStringSubmatch(ref)
		name := m[1] + m[2]
		if _, seen := env[refPrefix+name]; !seen {
			names = append(names, name)
		}
		env[refPrefix+name] = 0
		return refPrefix + name
	})
	tree, err := parser.Parse(src)
	if err != nil {
		return nil, err
	}
	arithmetic := &arithmeticOnly{refs: env}
	ast.Walk(&tree.Node, arithmetic)
	if arithmetic.refused != "" {
		return nil, fmt.Errorf("%q: %s is not arithmetic on numbers", s, arithmetic.refused)
	}
	// The environment's names, all numbers, make expr check the types now.
	program, err := expr.Compile(src, expr.Env(env), expr.DisableAllBuiltins(), expr.AsFloat64())
	if err != nil {
		return nil, err
	}
	return func(refs map[string]float64) (float64, error) { return runMath(program, names, refs) }, nil
}

func runMath(program *vm.Program, names []string, refs map[string]float64) (float64, error) {
	env := make(map[string]any, len(names))
	for _, name := range names {
		v, ok := refs[name]
		if !ok {
			return 0, fmt.Errorf("no number for $%s", name)
		}
		env[refPrefix+name] = v
	}
	out, err := expr.Run(program, env)
	if err != nil {
		return 0, err
	}
	return out.(float64), nil
}

// arithmeticOnly records the first node that is not a number, a
// reference, + - * / or a unary minus.
type arithmeticOnly struct {
	refs    map[string]float64
	refused string
}

func (a *arithmeticOnly) Visit(node *ast.Node) {
	if a.refused != "" {
		return
	}
	switch n := (*node).(type) {
	case *ast.IntegerNode, *ast.FloatNode:
	case *ast.IdentifierNode:
		if _, ok := a.refs[n.Value]; !ok {
			a.refused = "the name " + n.Value // not a $reference
		}
	case *ast.BinaryNode:
		switch n.Operator {
		case "+", "-", "*", "/":
		default:
			a.refused = "the operator " + n.Operator
		}
	case *ast.UnaryNode:
		if n.Operator != "-" && n.Operator != "+" {
			a.refused = "the operator " + n.Operator
		}
	default:
		a.refused = fmt.Sprintf("%T", n)
	}
}
