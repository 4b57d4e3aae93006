package view

import (
	"encoding/json"
	"fmt"

	sdk "github.com/grafana/grafana-foundation-sdk/go/dashboard"

	"github.com/clima-dev/clima/internal/dashboard"
	"k8s.io/utils/ptr"
)

// Field config is applied in Grafana's frontend (packages/grafana-data/src/
// field/fieldOverrides.ts); the defaults, the matchers and the properties
// clima's dashboard uses are written here.

// fieldDisplay is one field's config: the panel's defaults, the panel
// type's defaults where the file sets nothing, and matching overrides.
type fieldDisplay struct {
	displayName string
	unit        string
	decimals    *float64
	noValue     *string
	color       sdk.FieldColor
	thresholds  sdk.ThresholdsConfig
}

// Grafana's defaults: thresholds green, then red from 80; the colour mode
// is thresholds for stat and table, the classic palette for charts.
func defaultThresholds() sdk.ThresholdsConfig {
	eighty := 80.0
	return sdk.ThresholdsConfig{Mode: sdk.ThresholdsModeAbsolute, Steps: []sdk.Threshold{{Color: "green"}, {Color: "red", Value: &eighty}}}
}

func (p panel) fieldConfig(frame dashboard.Frame, field dashboard.Field, panelType string) fieldDisplay {
	d := p.FieldConfig.Defaults
	fd := fieldDisplay{unit: ptr.Deref(d.Unit, ""), decimals: d.Decimals, noValue: d.NoValue, thresholds: defaultThresholds()}
	fd.color.Mode = sdk.FieldColorModeIdThresholds
	if panelType == "barchart" || panelType == "timeseries" {
		fd.color.Mode = sdk.FieldColorModeIdPaletteClassic
	}
	if d.Color != nil {
		fd.color = *d.Color
	}
	if d.Thresholds != nil {
		fd.thresholds = *d.Thresholds
	}
	displayName := ptr.Deref(d.DisplayName, "")
	for _, o := range p.FieldConfig.Overrides {
		option := fmt.Sprint(o.Matcher.Options)
		if o.Matcher.Id == "byFrameRefID" && option != frame.RefID || o.Matcher.Id == "byName" && option != field.Name {
			continue
		}
		for _, prop := range o.Properties {
			switch prop.Id {
			case "displayName":
				displayName = fmt.Sprint(prop.Value)
			case "unit":
				fd.unit = fmt.Sprint(prop.Value)
			case "noValue":
				s := fmt.Sprint(prop.Value)
				fd.noValue = &s
			case "decimals":
				if n, ok := prop.Value.(float64); ok {
					fd.decimals = &n
				}
			case "color":
				remarshal(prop.Value, &fd.color)
			case "thresholds":
				remarshal(prop.Value, &fd.thresholds)
			}
		}
	}
	// Grafana names a plugin's "Value" field after its frame (the key).
	switch {
	case displayName != "":
		fd.displayName = displayName
	case field.Name == "Value" && frame.Name != "":
		fd.displayName = frame.Name
	default:
		fd.displayName = field.Name
	}
	return fd
}

func remarshal(from, to any) {
	data, _ := json.Marshal(from)
	_ = json.Unmarshal(data, to)
}

// display formats a raw value with the field's unit and colour.
func (fd fieldDisplay) display(title string, raw any, index int) DisplayValue {
	n, ok := raw.(float64)
	if !ok {
		text := msgNoData
		if fd.noValue != nil {
			text = *fd.noValue
		}
		if s, isString := raw.(string); isString && s != "" {
			text = s
		}
		return DisplayValue{Title: title, Text: text, Color: fd.noValueColor()}
	}
	return DisplayValue{Title: title, Text: formatValue(n, fd.unit, fd.decimals), Number: &n, Color: fd.valueColor(n, index)}
}

// valueColor is the colour of a value: its threshold step, the fixed
// colour, or the palette's colour for the field.
func (fd fieldDisplay) valueColor(n float64, index int) string {
	switch fd.color.Mode {
	case sdk.FieldColorModeIdThresholds:
		color := ""
		for _, step := range fd.thresholds.Steps {
			if step.Value == nil || n >= *step.Value {
				color = step.Color
			}
		}
		return colorHex(color)
	case sdk.FieldColorModeIdFixed:
		return colorHex(ptr.Deref(fd.color.FixedColor, ""))
	}
	return colorHex(classicPalette[index%len(classicPalette)])
}

// seriesColor is the colour of a whole series (bars, lines).
func (fd fieldDisplay) seriesColor(index int) string {
	if fd.color.Mode == sdk.FieldColorModeIdThresholds && len(fd.thresholds.Steps) > 0 {
		return colorHex(fd.thresholds.Steps[0].Color)
	}
	return fd.valueColor(0, index)
}

// noValueColor is the base threshold's colour, as Grafana shows "No data".
func (fd fieldDisplay) noValueColor() string {
	if len(fd.thresholds.Steps) > 0 {
		return colorHex(fd.thresholds.Steps[0].Color)
	}
	return colorHex("text")
}
