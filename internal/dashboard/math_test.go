package dashboard

import "testing"

func TestMath(t *testing.T) {
	refs := map[string]float64{"A": 60, "B": 57, "C2": 2, "in": 4}
	for _, tc := range []struct {
		expr string
		want float64
		err  bool
		// refused is an error when the file is read, before any number.
		refused bool
	}{
		{expr: "$A - $B", want: 3},
		{expr: "${A}-${B}", want: 3},
		{expr: "$A - $B * $C2", want: -54},
		{expr: "($A - $B) * $C2", want: 6},
		{expr: "-$A / 4 + 1.5", want: -13.5},
		{expr: "$in + $A", want: 64}, // a refId that is one of expr's words
		{expr: "$A - $D", err: true}, // no number for D: refused when drawn
		{expr: "abs($A)", refused: true},
		{expr: "$A -", refused: true},
		{expr: "($A", refused: true},
		{expr: "$A % 2", refused: true},
		{expr: "$A ** 2", refused: true},
		{expr: "$A > 2", refused: true},
		{expr: "A + 1", refused: true}, // a bare name, not a $reference
		{expr: "'a' + $A", refused: true},
	} {
		t.Run(tc.expr, func(t *testing.T) {
			e, err := parseMath(tc.expr)
			if tc.refused != (err != nil) {
				t.Fatalf("parsing: %v; want refused %v", err, tc.refused)
			}
			if tc.refused {
				return
			}
			var got float64
			if err == nil {
				got, err = e(refs)
			}
			if tc.err != (err != nil) || !tc.err && got != tc.want {
				t.Fatalf("= %v, %v; want %v (error %v)", got, err, tc.want, tc.err)
			}
		})
	}
}
