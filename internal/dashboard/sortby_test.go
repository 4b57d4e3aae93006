package dashboard

import (
	"fmt"
	"testing"
)

// TestSortBy: rows follow the field, strings in the browser's collation
// (accents are not byte order), numbers by value, nulls last, and every
// field of a row moves with it.
func TestSortBy(t *testing.T) {
	frame := Frame{Name: "country_counts", Fields: []Field{
		{Name: "Field", Type: TypeString, Values: []any{"MX", "México", "Belice", nil, "El Salvador"}},
		{Name: "Value", Type: TypeNumber, Values: []any{5.0, 4.0, 3.0, 2.0, 1.0}},
	}}
	for _, c := range []struct {
		options map[string]any
		want    string
	}{
		{map[string]any{"fields": map[string]any{}, "sort": []any{map[string]any{"field": "Field"}}},
			"[Belice El Salvador México MX <nil>] [3 1 4 5 2]"},
		{map[string]any{"fields": map[string]any{}, "sort": []any{map[string]any{"field": "Value", "desc": true}}},
			"[MX México Belice <nil> El Salvador] [5 4 3 2 1]"},
		{map[string]any{"fields": map[string]any{}, "sort": []any{map[string]any{"field": "Value"}}},
			"[El Salvador <nil> Belice México MX] [1 2 3 4 5]"},
	} {
		out, err := sortBy(c.options, []Frame{frame})
		if err != nil {
			t.Fatal(err)
		}
		if got := fmt.Sprint(out[0].Fields[0].Values, " ", out[0].Fields[1].Values); got != c.want {
			t.Errorf("%v: %s, want %s", c.options["sort"], got, c.want)
		}
	}
	if _, err := sortBy(map[string]any{"sort": []any{map[string]any{"feild": "Field"}}}, []Frame{frame}); err == nil {
		t.Error("a misspelt option was taken")
	}
}
