package events

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// seeds are bodies of every shape the decoders meet; testdata/fuzz holds
// more, found by fuzzing (make fuzz).
var seeds = []string{
	`{"description":"llueve","country":"GT","weather":"Lluvioso"}`,
	`[{"Description":"a","Country":"gt","Weather":"sunny"},{"descripcion":"b","pais":"MX","clima":"nublado"}]`,
	`{"DESCRIPCIÓN":"x","PAÍS":"usa","CLIMA":"LLUVIA","extra":{"a":[1,2,{"b":null}]}}`,
	`{"description":"x","country":"GT","pais":"MX","weather":"sol"}`,
	`[{"id":"a","description":"x","country":"GT","weather":"Soleado","accepted_at":"2026-01-01T00:00:00Z"}]`,
	`{"description":null,"country":1e999,"weather":true}`, `[]`, `[1,"a",null]`, `""`, `{`, "\xff\xfe", `[[[[[]]]]]`,
}

// FuzzDecodeSubmissions feeds the client decoder (the Trigger path and the
// legacy /input share it) any bytes: it must never panic, must refuse with
// an *InvalidError, and whatever it accepts must be valid and canonical.
func FuzzDecodeSubmissions(f *testing.F) {
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		reports, err := DecodeSubmissions(body)
		if err != nil {
			var invalid *InvalidError
			if !errors.As(err, &invalid) || invalid.Reason == "" || len(invalid.Problems) > maxListedProblems {
				t.Fatalf("refusal %v is not a complete *InvalidError", err)
			}
			if _, err := json.Marshal(invalid); err != nil {
				t.Fatalf("refusal does not encode as JSON: %v", err)
			}
			return
		}
		if len(reports) == 0 || len(reports) > MaxReports {
			t.Fatalf("accepted %d reports", len(reports))
		}
		for i, r := range reports {
			r.ID, r.AcceptedAt = "id", fixedTime
			if problems := r.Validate(i); len(problems) > 0 {
				t.Fatalf("accepted report %+v is not valid: %v", r, problems)
			}
			if !utf8.ValidString(r.Description) || strings.TrimSpace(r.Country) != r.Country {
				t.Fatalf("accepted report %+v is not normalised", r)
			}
		}
	})
}

// FuzzDecodeReports feeds the decoder of validated reports (publisher,
// consumers, the gRPC writers' input) any bytes.
func FuzzDecodeReports(f *testing.F) {
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		reports, err := DecodeReports(body)
		if err != nil {
			var invalid *InvalidError
			if !errors.As(err, &invalid) {
				t.Fatalf("refusal %v is not an *InvalidError", err)
			}
			return
		}
		for i, r := range reports {
			if problems := r.Validate(i); len(problems) > 0 {
				t.Fatalf("accepted report %+v is not valid: %v", r, problems)
			}
			// Validate checks without normalising: what it passes,
			// normalising leaves as it is.
			normal, problems := Submission{Description: r.Description, Country: r.Country, Weather: string(r.Weather)}.Normalize(i)
			normal.ID, normal.AcceptedAt = r.ID, r.AcceptedAt
			if len(problems) > 0 || normal != r {
				t.Fatalf("valid report %+v normalises to %+v (%v)", r, normal, problems)
			}
		}
		// The one-pass decoder accepts only what the entry-by-entry one
		// accepts, and reads it the same.
		if fast, ok := decodeReportsFast(body); ok {
			slow, err := decodeEach(body, decodeReport)
			if err != nil || !reflect.DeepEqual(fast, slow) {
				t.Fatalf("one pass read %+v, entry by entry %+v (%v)", fast, slow, err)
			}
		}
	})
}

var fixedTime = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
