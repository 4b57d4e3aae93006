package view

import "testing"

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
