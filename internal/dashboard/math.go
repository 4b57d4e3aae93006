package dashboard

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"
)

// Grafana's server-side math expressions run in Grafana's backend, which is
// not importable as a library; this evaluates their arithmetic on numbers
// (+ - * /, parentheses, $A / ${A} references), which is what a stat over
// single values uses. Series arithmetic and functions are refused when the
// file is read.

// mathExpr is a parsed expression: evaluate it with the numbers of the
// queries it references.
type mathExpr func(refs map[string]float64) (float64, error)

func parseMath(s string) (mathExpr, error) {
	p := &mathParser{src: s}
	e, err := p.sum()
	if err != nil {
		return nil, err
	}
	p.space()
	if p.pos != len(p.src) {
		return nil, fmt.Errorf("unexpected %q at %d", p.src[p.pos:], p.pos)
	}
	return e, nil
}

type mathParser struct {
	src string
	pos int
}

func (p *mathParser) space() {
	for p.pos < len(p.src) && p.src[p.pos] == ' ' {
		p.pos++
	}
}

func (p *mathParser) peek() byte {
	p.space()
	if p.pos < len(p.src) {
		return p.src[p.pos]
	}
	return 0
}

func (p *mathParser) sum() (mathExpr, error) {
	left, err := p.product()
	for err == nil {
		op := p.peek()
		if op != '+' && op != '-' {
			return left, nil
		}
		p.pos++
		var right mathExpr
		if right, err = p.product(); err == nil {
			left = binary(op, left, right)
		}
	}
	return nil, err
}

func (p *mathParser) product() (mathExpr, error) {
	left, err := p.unary()
	for err == nil {
		op := p.peek()
		if op != '*' && op != '/' {
			return left, nil
		}
		p.pos++
		var right mathExpr
		if right, err = p.unary(); err == nil {
			left = binary(op, left, right)
		}
	}
	return nil, err
}

func (p *mathParser) unary() (mathExpr, error) {
	if p.peek() == '-' {
		p.pos++
		e, err := p.unary()
		if err != nil {
			return nil, err
		}
		return func(r map[string]float64) (float64, error) { v, err := e(r); return -v, err }, nil
	}
	return p.operand()
}

func (p *mathParser) operand() (mathExpr, error) {
	switch c := p.peek(); {
	case c == '(':
		p.pos++
		e, err := p.sum()
		if err != nil {
			return nil, err
		}
		if p.peek() != ')' {
			return nil, fmt.Errorf("missing ) at %d", p.pos)
		}
		p.pos++
		return e, nil
	case c == '$':
		p.pos++
		braced := p.pos < len(p.src) && p.src[p.pos] == '{'
		if braced {
			p.pos++
		}
		start := p.pos
		for p.pos < len(p.src) && (unicode.IsLetter(rune(p.src[p.pos])) || unicode.IsDigit(rune(p.src[p.pos])) || p.src[p.pos] == '_') {
			p.pos++
		}
		name := p.src[start:p.pos]
		if braced {
			if p.pos >= len(p.src) || p.src[p.pos] != '}' {
				return nil, fmt.Errorf("missing } after ${%s", name)
			}
			p.pos++
		}
		if name == "" {
			return nil, fmt.Errorf("empty reference at %d", start)
		}
		return func(r map[string]float64) (float64, error) {
			v, ok := r[name]
			if !ok {
				return 0, fmt.Errorf("$%s has no number", name)
			}
			return v, nil
		}, nil
	case c >= '0' && c <= '9' || c == '.':
		start := p.pos
		for p.pos < len(p.src) && strings.ContainsRune("0123456789.eE", rune(p.src[p.pos])) {
			p.pos++
		}
		n, err := strconv.ParseFloat(p.src[start:p.pos], 64)
		if err != nil {
			return nil, err
		}
		return func(map[string]float64) (float64, error) { return n, nil }, nil
	}
	return nil, fmt.Errorf("unexpected %q at %d (numbers, $refs, + - * / and parentheses run locally)", p.src[p.pos:], p.pos)
}

func binary(op byte, left, right mathExpr) mathExpr {
	return func(r map[string]float64) (float64, error) {
		a, err := left(r)
		if err != nil {
			return 0, err
		}
		b, err := right(r)
		if err != nil {
			return 0, err
		}
		switch op {
		case '+':
			return a + b, nil
		case '-':
			return a - b, nil
		case '*':
			return a * b, nil
		}
		return a / b, nil
	}
}
