package dashboard

import (
	"encoding/json"
	"fmt"
	"slices"

	"golang.org/x/text/collate"
	"golang.org/x/text/language"
)

// sortByOptions are the sortBy transformation's options; Grafana sorts by
// the first entry of sort only.
type sortByOptions struct {
	Fields map[string]any `json:"fields"`
	Sort   []struct {
		Field string `json:"field"`
		Desc  bool   `json:"desc,omitempty"`
	} `json:"sort"`
}

// sortBy orders every frame's rows by one field, as Grafana's sortBy
// (sortDataFrame): numbers by value, strings as the browser's
// localeCompare orders them (a Unicode collation, not byte order: "México"
// before "MX"), nulls last; a frame without the field stays as it is.
func sortBy(options any, frames []Frame) ([]Frame, error) {
	var o sortByOptions
	data, _ := json.Marshal(options)
	if err := strictJSON(data, &o); err != nil {
		return nil, fmt.Errorf("sortBy options: %w", err)
	}
	if len(o.Sort) == 0 {
		return frames, nil
	}
	by, desc := o.Sort[0].Field, o.Sort[0].Desc
	collator := collate.New(language.Und)
	out := make([]Frame, len(frames))
	for i, f := range frames {
		out[i] = f
		k := slices.IndexFunc(f.Fields, func(field Field) bool { return field.Name == by })
		if k < 0 {
			continue
		}
		order := make([]int, f.Len())
		for r := range order {
			order[r] = r
		}
		values := f.Fields[k].Values
		slices.SortStableFunc(order, func(a, b int) int {
			c := compareValues(collator, values[a], values[b])
			if desc && values[a] != nil && values[b] != nil {
				c = -c
			}
			return c
		})
		out[i].Fields = make([]Field, len(f.Fields))
		for j, field := range f.Fields {
			sorted := Field{Name: field.Name, Type: field.Type, Values: make([]any, len(order))}
			for r, from := range order {
				sorted.Values[r] = field.Values[from]
			}
			out[i].Fields[j] = sorted
		}
	}
	return out, nil
}

func compareValues(collator *collate.Collator, a, b any) int {
	switch {
	case a == nil && b == nil:
		return 0
	case a == nil:
		return 1
	case b == nil:
		return -1
	}
	if x, ok := a.(float64); ok {
		if y, ok := b.(float64); ok {
			switch {
			case x < y:
				return -1
			case x > y:
				return 1
			}
			return 0
		}
	}
	return collator.CompareString(fmt.Sprint(a), fmt.Sprint(b))
}
