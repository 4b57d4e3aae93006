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
	// MaxMessageBytes bounds one gRPC Publish message: a full batch of
	// MaxReports reports with room.
	MaxMessageBytes = 16 << 20
	// MaxReports is how many reports one event or request may carry.
	MaxReports = 10_000
	// MaxGroupReports is how many reports one broker message carries at
	// most, and so one store script call and one consumer's store write.
	MaxGroupReports = 1000
	// MaxDescriptionChars is the longest description, in characters (a tweet).
	MaxDescriptionChars = 280
	// MaxCountryChars is the longest country, in characters.
	MaxCountryChars = 64
	// MaxIDBytes is the longest report id.
	MaxIDBytes = 128
	// MaxBodyBytes is the largest body any clima endpoint reads: room for
	// MaxReports reports with maximal ASCII descriptions. A typical
	// 10,000-report array is about 1 MB.
	MaxBodyBytes = 4 << 20
	// MaxEventBytes is the largest CloudEvent the Broker takes, and so the
	// largest record of its topic and the largest event a dead letter
	// carries: a 10,000-report event and its validated reply (about 1.6 MB)
	// fit. In a cluster, kafka-source/kafka.yaml (message.max.bytes) and
	// scripts/kafka-broker-limits.sh (the Kafka broker's max.request.size)
	// raise Kafka's limits to the same; a test holds them equal.
	MaxEventBytes = 16 << 20
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
	if problem := descriptionProblem(description); problem != "" {
		fail("description", "%s", problem)
	}
	country := strings.TrimSpace(s.Country)
	if problem := countryProblem(country); problem != "" {
		fail("country", "%s", problem)
	} else if isCountryCode(country) {
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

// Validate checks the invariants of a report that travels between
// functions, which ingest normalised once: an id, an acceptance time, and
// every field already in its canonical form. It normalises nothing again:
// on the path of every report it is one pass over each field.
func (r Report) Validate(index int) []Problem {
	var problems []Problem
	fail := func(field, format string, args ...any) {
		problems = append(problems, Problem{Index: index, Field: field, Message: fmt.Sprintf(format, args...)})
	}
	if problem := descriptionProblem(r.Description); problem != "" {
		fail("description", "%s", problem)
	} else if isSpaced(r.Description) {
		fail("description", "is not trimmed")
	}
	if problem := countryProblem(r.Country); problem != "" {
		fail("country", "%s", problem)
	} else if isSpaced(r.Country) || isCountryCode(r.Country) && strings.ToUpper(r.Country) != r.Country {
		fail("country", "is not normalised")
	}
	switch r.Weather {
	case Rainy, Cloudy, Sunny:
	case "":
		fail("weather", "is required")
	default:
		if _, ok := ParseWeather(string(r.Weather)); ok {
			fail("weather", "is not canonical")
		} else {
			fail("weather", "%q is not a known weather; use %s, %s or %s", truncate(string(r.Weather), 40), Rainy, Cloudy, Sunny)
		}
	}
	if r.ID == "" || len(r.ID) > MaxIDBytes {
		fail("id", "is required, at most %d bytes", MaxIDBytes)
	}
	if r.AcceptedAt.IsZero() {
		fail("accepted_at", "is required")
	}
	return problems
}

func descriptionProblem(s string) string {
	return textProblem(s, MaxDescriptionChars, &controlChars, "contains control characters")
}

func countryProblem(s string) string {
	return textProblem(s, MaxCountryChars, &unprintableChars, "contains characters that are not printable")
}

// charRule refuses characters: by a table for ASCII, the common case, and
// by a function for the rest.
type charRule struct {
	ascii [utf8.RuneSelf]bool
	other func(rune) bool
}

func newCharRule(bad func(rune) bool) charRule {
	rule := charRule{other: bad}
	for c := range rule.ascii {
		rule.ascii[c] = bad(rune(c))
	}
	return rule
}

var (
	controlChars     = newCharRule(isForbiddenControl)
	unprintableChars = newCharRule(func(c rune) bool { return !unicode.IsPrint(c) })
)

// textProblem says what is wrong with a field's text, "" when nothing is:
// empty, longer than max characters, or holding a character the rule
// refuses. It reads s once.
func textProblem(s string, max int, bad *charRule, badMessage string) string {
	chars, hasBad := 0, false
	for i := 0; i < len(s); chars++ {
		if c := s[i]; c < utf8.RuneSelf {
			hasBad = hasBad || bad.ascii[c]
			i++
			continue
		}
		c, size := utf8.DecodeRuneInString(s[i:])
		hasBad = hasBad || bad.other(c)
		i += size
	}
	switch {
	case chars == 0:
		return "is required"
	case chars > max:
		return fmt.Sprintf("has %d characters, at most %d are allowed", chars, max)
	case hasBad:
		return badMessage
	}
	return ""
}

// isSpaced reports whether s starts or ends with white space.
func isSpaced(s string) bool {
	first, _ := utf8.DecodeRuneInString(s)
	last, _ := utf8.DecodeLastRuneInString(s)
	return unicode.IsSpace(first) || unicode.IsSpace(last)
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
