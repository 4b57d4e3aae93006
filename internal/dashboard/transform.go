package dashboard

import (
	"encoding/json"
	"fmt"
	"strconv"
)

// Grafana's transformations run in its frontend (TypeScript), so the ones
// the dashboard uses are written here, following
// packages/grafana-data/src/transformations/transformers.

// transformers are the transformations the local view applies, by id.
var transformers = map[string]func(options any, frames []Frame) ([]Frame, error){
	"convertFieldType": convertFieldType,
	"sortBy":           sortBy,
}

// convertFieldTypeOptions are convertFieldType's options.
type convertFieldTypeOptions struct {
	Conversions []struct {
		TargetField     string `json:"targetField"`
		DestinationType string `json:"destinationType"`
	} `json:"conversions"`
	Fields map[string]any `json:"fields"`
}

// convertFieldType converts the named fields of every frame; a value that
// does not parse as a number becomes null, as in Grafana.
func convertFieldType(options any, frames []Frame) ([]Frame, error) {
	var o convertFieldTypeOptions
	data, _ := json.Marshal(options)
	if err := strictJSON(data, &o); err != nil { // Grafana would ignore a misspelt option
		return nil, fmt.Errorf("convertFieldType options: %w", err)
	}
	out := make([]Frame, len(frames))
	for i, f := range frames {
		out[i] = Frame{Name: f.Name, RefID: f.RefID, Fields: append([]Field(nil), f.Fields...)}
		for _, c := range o.Conversions {
			for j, field := range out[i].Fields {
				if field.Name != c.TargetField {
					continue
				}
				switch c.DestinationType {
				case "number":
					out[i].Fields[j] = toNumbers(field)
				case "string":
					out[i].Fields[j] = toStrings(field)
				default:
					return nil, fmt.Errorf("convertFieldType to %q is not supported locally", c.DestinationType)
				}
			}
		}
	}
	return out, nil
}

func toNumbers(f Field) Field {
	out := Field{Name: f.Name, Type: TypeNumber, Values: make([]any, len(f.Values))}
	for i, v := range f.Values {
		switch v := v.(type) {
		case float64:
			out.Values[i] = v
		case string:
			if n, err := strconv.ParseFloat(v, 64); err == nil {
				out.Values[i] = finite(n)
			}
		}
	}
	return out
}

func toStrings(f Field) Field {
	out := Field{Name: f.Name, Type: TypeString, Values: make([]any, len(f.Values))}
	for i, v := range f.Values {
		if v != nil {
			out.Values[i] = fmt.Sprint(v)
		}
	}
	return out
}
