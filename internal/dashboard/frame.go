package dashboard

import (
	"errors"
	"math"
	"strconv"

	sigsjson "sigs.k8s.io/json"
)

// FieldType is a data frame field's type, as Grafana's data plane names it.
type FieldType string

// The field types the redis-datasource plugin produces for the commands the
// dashboard runs, and the expression and streaming frames add.
const (
	TypeString FieldType = "string"
	TypeNumber FieldType = "number"
	TypeTime   FieldType = "time"
)

// Frame is a data frame as the redis-datasource plugin's backend builds it
// (grafana-plugin-sdk-go's data.Frame): a name and typed columns.
type Frame struct {
	Name   string  `json:"name"`
	RefID  string  `json:"refId"`
	Fields []Field `json:"fields"`
}

// Field is one column of a frame. Values hold strings for TypeString,
// float64 for TypeNumber and milliseconds since the epoch for TypeTime.
type Field struct {
	Name   string    `json:"name"`
	Type   FieldType `json:"type"`
	Values []any     `json:"values"`
}

// Len is the number of rows of the frame.
func (f Frame) Len() int {
	if len(f.Fields) == 0 {
		return 0
	}
	return len(f.Fields[0].Values)
}

func stringField(name string, values []string) Field {
	f := Field{Name: name, Type: TypeString, Values: make([]any, len(values))}
	for i, v := range values {
		f.Values[i] = v
	}
	return f
}

func numberField(name string, values ...float64) Field {
	f := Field{Name: name, Type: TypeNumber, Values: make([]any, len(values))}
	for i, v := range values {
		f.Values[i] = finite(v)
	}
	return f
}

// finite is v, or nil for NaN and ±Inf ("NaN" parses as a number, and
// JSON has no way to carry it): the page shows no value there.
func finite(v float64) any {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return nil
	}
	return v
}

// valueField is the plugin's createFrameValue: a float64 field when the
// reply parses as a number, else a string field (pkg/data-frame.go).
func valueField(name, value string) Field {
	if n, err := strconv.ParseFloat(value, 64); err == nil {
		return numberField(name, n)
	}
	return stringField(name, []string{value})
}

// strictJSON decodes case-sensitively and refuses unknown and duplicate
// fields, as the strictest reader of these files would.
func strictJSON(data []byte, v any) error {
	strict, err := sigsjson.UnmarshalStrict(data, v)
	if err == nil && len(strict) > 0 {
		err = errors.Join(strict...)
	}
	return err
}
