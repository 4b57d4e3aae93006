package view

import (
	"math"
	"strconv"
	"strings"
)

// Grafana formats values in its frontend (packages/grafana-data/src/
// valueFormats); the units clima's dashboard uses are written here.

// formatValue is a number as Grafana shows it with a unit and decimals.
func formatValue(v float64, unit string, decimals *float64) string {
	switch unit {
	case "", "none":
		return fixed(v, decimals)
	case "short":
		return scaled(v, decimals, []string{"", " K", " Mil", " Bil", " Tri"}, "")
	case "ops":
		return scaled(v, decimals, []string{"", "K", "M", "B", "T"}, " ops")
	case "ms":
		switch a := math.Abs(v); {
		case a < 1000:
			return fixed(v, decimals) + " ms"
		case a < 60_000:
			return fixed(v/1000, decimals) + " s"
		case a < 3_600_000:
			return fixed(v/60_000, decimals) + " min"
		default:
			return fixed(v/3_600_000, decimals) + " hour"
		}
	}
	if suffix, ok := strings.CutPrefix(unit, "suffix:"); ok {
		return fixed(v, decimals) + suffix
	}
	if prefix, ok := strings.CutPrefix(unit, "prefix:"); ok {
		return prefix + fixed(v, decimals)
	}
	// Grafana shows an unknown unit as a custom suffix.
	return fixed(v, decimals) + " " + unit
}

// fixed is Grafana's toFixed: the given decimals, or as many as the
// value's size calls for (none for integers).
func fixed(v float64, decimals *float64) string {
	if decimals != nil {
		return strconv.FormatFloat(v, 'f', int(*decimals), 64)
	}
	if v == math.Trunc(v) && math.Abs(v) < 1e15 {
		return strconv.FormatFloat(v, 'f', 0, 64)
	}
	d := 2
	switch a := math.Abs(v); {
	case a >= 100:
		d = 0
	case a >= 10:
		d = 1
	}
	return strconv.FormatFloat(v, 'f', d, 64)
}

// scaled divides by 1000 while it can and appends the step's suffix.
func scaled(v float64, decimals *float64, steps []string, unit string) string {
	i := 0
	for math.Abs(v) >= 1000 && i < len(steps)-1 {
		v /= 1000
		i++
	}
	return fixed(v, decimals) + steps[i] + unit
}

// Grafana's dark theme: the named colours a dashboard file uses, and the
// classic palette that series take in turn (packages/grafana-data/src/
// themes/palette.ts).
var namedColors = map[string]string{
	"green": "#73BF69", "red": "#F2495C", "orange": "#FF9830", "yellow": "#FADE2A",
	"blue": "#5794F2", "purple": "#B877D9", "text": "#CCCCDC",
	"dark-green": "#37872D", "dark-red": "#C4162A", "dark-orange": "#FA6400", "dark-yellow": "#E0B400",
	"dark-blue": "#1F60C4", "dark-purple": "#8F3BB8",
	"light-green": "#96D98D", "light-red": "#FF7383", "light-orange": "#FFB357", "light-yellow": "#FFEE52",
	"light-blue": "#8AB8FF", "light-purple": "#CA95E5",
}

var classicPalette = []string{"green", "yellow", "light-blue", "orange", "red", "blue", "purple",
	"dark-green", "dark-yellow", "dark-orange", "dark-red", "dark-blue", "dark-purple"}

// colorHex is a colour of a dashboard file as CSS.
func colorHex(name string) string {
	if hex, ok := namedColors[name]; ok {
		return hex
	}
	return name // #rrggbb, rgb(…) and CSS names pass as they are
}
