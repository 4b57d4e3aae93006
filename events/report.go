// Package events holds clima's wire contracts: the Report payload with its
// validation and normalisation, the CloudEvent types it travels in, and the
// gRPC Writer service (writer.proto, generated into writerpb).
package events

import (
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Limits of what a request may carry.
const (
	// MaxReports is how many reports one event or request may carry.
	MaxReports = 10_000
	// MaxGroupReports is how many reports one broker message carries at
	// most, and so one store script call and one consumer's store write.
	MaxGroupReports = 1000
	// MaxDescriptionChars is the longest description, in characters (a tweet).
	MaxDescriptionChars = 280
	// MaxCountryChars is the longest country, in characters.
	MaxCountryChars = 64
	// MaxBodyBytes is the largest body any clima endpoint reads: room for
	// MaxReports reports with maximal ASCII descriptions. A typical
	// 10,000-report array is about 1 MB.
	MaxBodyBytes = 4 << 20
)

// Weather is one of the three canonical weathers.
type Weather string

// The canonical weathers, as the original dashboards spell them.
const (
	Rainy  Weather = "Lluvioso"
	Cloudy Weather = "Nubloso"
	Sunny  Weather = "Soleado"
)

// Weathers lists the canonical weathers in display order.
var Weathers = []Weather{Rainy, Cloudy, Sunny}

// weatherSynonyms maps a lower-cased spelling to its canonical weather.
var weatherSynonyms = map[string]Weather{
	"lluvioso": Rainy, "lluviosa": Rainy, "lluvia": Rainy, "llueve": Rainy, "rainy": Rainy, "rain": Rainy,
	"nubloso": Cloudy, "nublado": Cloudy, "nublada": Cloudy, "nuboso": Cloudy, "nubosa": Cloudy,
	"cloudy": Cloudy, "clouds": Cloudy, "overcast": Cloudy,
	"soleado": Sunny, "soleada": Sunny, "sol": Sunny, "despejado": Sunny, "sunny": Sunny, "sun": Sunny, "clear": Sunny,
}

// ParseWeather returns the canonical weather for any accepted spelling,
// case-insensitively.
func ParseWeather(s string) (Weather, bool) {
	w, ok := weatherSynonyms[strings.ToLower(strings.TrimSpace(s))]
	return w, ok
}

// Report is one validated weather report. A batch of them is the data of a
// clima.weather.validated event; each travels alone as one message on Kafka
// and RabbitMQ, and is what the consumers store.
type Report struct {
	ID          string    `json:"id"`
	Description string    `json:"description"`
	Country     string    `json:"country"`
	Weather     Weather   `json:"weather"`
	AcceptedAt  time.Time `json:"accepted_at"`
}

// Submission is one report as a client sent it, before normalisation.
type Submission struct {
	Description string
	Country     string
	Weather     string
}

// Problem names one thing wrong with one entry of a request.
type Problem struct {
	Index   int    `json:"index"`
	Field   string `json:"field,omitempty"`
	Message string `json:"message"`
}

// Normalize validates a submission and returns its canonical form (without id
// and acceptance time), or every problem it has.
func (s Submission) Normalize(index int) (Report, []Problem) {
	var problems []Problem
	fail := func(field, format string, args ...any) {
		problems = append(problems, Problem{Index: index, Field: field, Message: fmt.Sprintf(format, args...)})
	}

	description := strings.TrimSpace(s.Description)
	switch n := utf8.RuneCountInString(description); {
	case n == 0:
		fail("description", "is required")
	case n > MaxDescriptionChars:
		fail("description", "has %d characters, at most %d are allowed", n, MaxDescriptionChars)
	case strings.ContainsFunc(description, isForbiddenControl):
		fail("description", "contains control characters")
	}

	country := strings.TrimSpace(s.Country)
	switch n := utf8.RuneCountInString(country); {
	case n == 0:
		fail("country", "is required")
	case n > MaxCountryChars:
		fail("country", "has %d characters, at most %d are allowed", n, MaxCountryChars)
	case strings.ContainsFunc(country, func(r rune) bool { return !unicode.IsPrint(r) }):
		fail("country", "contains characters that are not printable")
	case isCountryCode(country):
		country = strings.ToUpper(country)
	}

	weather, ok := ParseWeather(s.Weather)
	switch {
	case strings.TrimSpace(s.Weather) == "":
		fail("weather", "is required")
	case !ok:
		fail("weather", "%q is not a known weather; use %s, %s or %s", truncate(s.Weather, 40), Rainy, Cloudy, Sunny)
	}

	return Report{Description: description, Country: country, Weather: weather}, problems
}

// Validate checks a report that travels between functions: it must carry an
// id, an acceptance time and canonical, normalised fields.
func (r Report) Validate(index int) []Problem {
	normal, problems := Submission{Description: r.Description, Country: r.Country, Weather: string(r.Weather)}.Normalize(index)
	if len(problems) == 0 {
		switch {
		case normal.Description != r.Description:
			problems = append(problems, Problem{Index: index, Field: "description", Message: "is not trimmed"})
		case normal.Country != r.Country:
			problems = append(problems, Problem{Index: index, Field: "country", Message: "is not normalised"})
		case normal.Weather != r.Weather:
			problems = append(problems, Problem{Index: index, Field: "weather", Message: "is not canonical"})
		}
	}
	if r.ID == "" || len(r.ID) > 128 {
		problems = append(problems, Problem{Index: index, Field: "id", Message: "is required, at most 128 bytes"})
	}
	if r.AcceptedAt.IsZero() {
		problems = append(problems, Problem{Index: index, Field: "accepted_at", Message: "is required"})
	}
	return problems
}

// isCountryCode reports whether s looks like an ISO code: 2 or 3 ASCII letters.
func isCountryCode(s string) bool {
	if len(s) < 2 || len(s) > 3 {
		return false
	}
	for _, c := range []byte(s) {
		if (c < 'a' || c > 'z') && (c < 'A' || c > 'Z') {
			return false
		}
	}
	return true
}

// isForbiddenControl allows line breaks and tabs in a description, nothing
// else below the printable range.
func isForbiddenControl(r rune) bool {
	return unicode.IsControl(r) && r != '\n' && r != '\t' && r != '\r'
}

func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n]) + "…"
}
