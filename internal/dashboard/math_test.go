package dashboard

import "testing"

func TestMath(t *testing.T) {
	refs := map[string]float64{"A": 60, "B": 57, "C2": 2}
	for _, tc := range []struct {
		expr string
		want float64
		err  bool
	}{
		{expr: "$A - $B", want: 3},
		{expr: "${A}-${B}", want: 3},
		{expr: "$A - $B * $C2", want: -54},
		{expr: "($A - $B) * $C2", want: 6},
		{expr: "-$A / 4 + 1.5", want: -13.5},
		{expr: "$A - $D", err: true},
		{expr: "abs($A)", err: true},
		{expr: "$A -", err: true},
		{expr: "($A", err: true},
	} {
		t.Run(tc.expr, func(t *testing.T) {
			e, err := parseMath(tc.expr)
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

func TestFormatValue(t *testing.T) {
	two := 2.0
	for _, tc := range []struct {
		v        float64
		unit     string
		decimals *float64
		want     string
	}{
		{1000, "none", nil, "1000"}, {-3, "", nil, "-3"}, {12.345, "none", nil, "12.3"}, {1.5, "none", &two, "1.50"},
		{1234, "short", nil, "1.23 K"}, {2_500_000, "short", nil, "2.50 Mil"},
		{12, "ops", nil, "12 ops"}, {45_600, "ops", nil, "45.6K ops"},
		{250, "ms", nil, "250 ms"}, {1500, "ms", nil, "1.50 s"}, {7, "reports", nil, "7 reports"},
	} {
		if got := formatValue(tc.v, tc.unit, tc.decimals); got != tc.want {
			t.Errorf("formatValue(%v, %q) = %q, want %q", tc.v, tc.unit, got, tc.want)
		}
	}
}
