package events

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"unicode/utf8"
)

// maxListedProblems bounds an error body: a 10,000-entry request with every
// entry wrong names the first problems and counts the rest.
const maxListedProblems = 100

// InvalidError refuses a request as a whole and says why: a structural
// reason, or the problems of individual entries.
type InvalidError struct {
	Reason   string    `json:"error"`
	Problems []Problem `json:"problems,omitempty"`
	// Total counts every problem found, listed or not.
	Total int `json:"total_problems,omitempty"`
}

func (e *InvalidError) Error() string {
	if len(e.Problems) == 0 {
		return e.Reason
	}
	p := e.Problems[0]
	return fmt.Sprintf("%s: entry %d: %s %s", e.Reason, p.Index, p.Field, p.Message)
}

// HTTPStatus is 400: the sender must change the request, and a retry of
// the same one is refused the same way.
func (e *InvalidError) HTTPStatus() int { return http.StatusBadRequest }

func invalid(format string, args ...any) *InvalidError {
	return &InvalidError{Reason: fmt.Sprintf(format, args...)}
}

// fieldAliases maps a lower-cased key to the field it means: the English
// names and the spellings of legacy clients (Description, descripcion, pais,
// clima, …), accepted in any case.
var fieldAliases = map[string]string{
	"description": "description", "descripcion": "description", "descripción": "description",
	"country": "country", "pais": "country", "país": "country",
	"weather": "weather", "clima": "weather",
}

// DecodeSubmissions reads what a client sent: one report object or a JSON
// array of up to MaxReports of them, with any of the accepted key spellings,
// and returns them normalised (without ids). Either every entry is valid or
// the error is an *InvalidError describing what is wrong.
func DecodeSubmissions(body []byte) ([]Report, error) {
	return decodeEach(body, func(i int, raw json.RawMessage) (Report, []Problem) {
		sub, problems := decodeSubmission(i, raw)
		if len(problems) > 0 {
			return Report{}, problems
		}
		return sub.Normalize(i)
	})
}

// DecodeReports reads validated reports as they travel between functions:
// one report or an array of them, each with id and acceptance time.
func DecodeReports(body []byte) ([]Report, error) {
	if reports, ok := decodeReportsFast(body); ok {
		return reports, nil
	}
	return decodeEach(body, decodeReport)
}

func decodeReport(i int, raw json.RawMessage) (Report, []Problem) {
	var r Report
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return r, []Problem{{Index: i, Message: "is not a report: " + err.Error()}}
	}
	return r, r.Validate(i)
}

// decodeReportsFast decodes well-formed, valid reports in one pass; it
// gives up on anything else, which decodeEach then reads entry by entry to
// say what is wrong.
func decodeReportsFast(body []byte) ([]Report, bool) {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 || !utf8.Valid(trimmed) {
		return nil, false
	}
	var reports []Report
	dec := json.NewDecoder(bytes.NewReader(trimmed))
	dec.DisallowUnknownFields()
	var err error
	switch trimmed[0] {
	case '{':
		reports = make([]Report, 1)
		err = dec.Decode(&reports[0])
	case '[':
		err = dec.Decode(&reports)
	default:
		return nil, false
	}
	if err != nil || dec.More() || len(reports) == 0 || len(reports) > MaxReports {
		return nil, false
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, false // trailing data
	}
	for i := range reports {
		if len(reports[i].Validate(i)) > 0 {
			return nil, false
		}
	}
	return reports, true
}

// decodeEach decodes every entry of body, all or nothing.
func decodeEach(body []byte, decode func(int, json.RawMessage) (Report, []Problem)) ([]Report, error) {
	entries, err := splitEntries(body)
	if err != nil {
		return nil, err
	}
	reports := make([]Report, len(entries))
	var problems []Problem
	for i, raw := range entries {
		var entryProblems []Problem
		reports[i], entryProblems = decode(i, raw)
		problems = append(problems, entryProblems...)
	}
	if len(problems) > 0 {
		return nil, problemsError(len(entries), problems)
	}
	return reports, nil
}

func problemsError(entries int, problems []Problem) *InvalidError {
	bad := map[int]bool{}
	for _, p := range problems {
		bad[p.Index] = true
	}
	e := &InvalidError{
		Reason:   fmt.Sprintf("%d of %d reports are invalid", len(bad), entries),
		Problems: problems,
		Total:    len(problems),
	}
	if len(e.Problems) > maxListedProblems {
		e.Problems = e.Problems[:maxListedProblems]
	}
	return e
}

// splitEntries checks the body's shape and returns its entries, still raw:
// the body itself when it is one object, else the elements of its array.
func splitEntries(body []byte) ([]json.RawMessage, error) {
	if !utf8.Valid(body) {
		return nil, invalid("body is not valid UTF-8")
	}
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 {
		return nil, invalid("body is empty: send one report object or an array of reports")
	}
	if !json.Valid(trimmed) {
		return nil, invalid("body is not valid JSON: %s", syntaxError(trimmed))
	}
	switch trimmed[0] {
	case '{':
		return []json.RawMessage{trimmed}, nil
	case '[':
	default:
		return nil, invalid("body must be a report object or an array of reports, not %s", jsonKind(trimmed))
	}

	dec := json.NewDecoder(bytes.NewReader(trimmed))
	if _, err := dec.Token(); err != nil { // the opening bracket
		return nil, invalid("body is not valid JSON: %v", err)
	}
	var entries []json.RawMessage
	for dec.More() {
		if len(entries) == MaxReports {
			return nil, invalid("too many reports: at most %d in one request", MaxReports)
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, invalid("body is not valid JSON: %v", err)
		}
		entries = append(entries, raw)
	}
	if len(entries) == 0 {
		return nil, invalid("the array holds no reports")
	}
	return entries, nil
}

// decodeSubmission reads one entry's fields. Unknown keys are ignored; a key
// given twice, under one spelling or two, is refused as ambiguous.
func decodeSubmission(index int, raw json.RawMessage) (Submission, []Problem) {
	if len(raw) == 0 || raw[0] != '{' {
		return Submission{}, []Problem{{Index: index, Message: "must be a report object, not " + jsonKind(raw)}}
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if _, err := dec.Token(); err != nil {
		return Submission{}, []Problem{{Index: index, Message: err.Error()}}
	}
	var sub Submission
	var problems []Problem
	seen := map[string]string{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return sub, []Problem{{Index: index, Message: err.Error()}}
		}
		key, _ := tok.(string)
		var value json.RawMessage
		if err := dec.Decode(&value); err != nil {
			return sub, []Problem{{Index: index, Message: err.Error()}}
		}
		field, known := fieldAliases[strings.ToLower(key)]
		if !known {
			continue
		}
		if first, dup := seen[field]; dup {
			problems = append(problems, Problem{Index: index, Field: field, Message: fmt.Sprintf("is given twice (%q and %q)", first, key)})
			continue
		}
		seen[field] = key
		var s string
		if len(value) == 0 || value[0] != '"' {
			if string(value) != "null" {
				problems = append(problems, Problem{Index: index, Field: field, Message: "must be a string, not " + jsonKind(value)})
			}
			continue
		}
		if err := json.Unmarshal(value, &s); err != nil {
			problems = append(problems, Problem{Index: index, Field: field, Message: err.Error()})
			continue
		}
		switch field {
		case "description":
			sub.Description = s
		case "country":
			sub.Country = s
		case "weather":
			sub.Weather = s
		}
	}
	return sub, problems
}

// jsonKind names the kind of a JSON value for error messages.
func jsonKind(raw []byte) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return "nothing"
	}
	switch raw[0] {
	case '{':
		return "an object"
	case '[':
		return "an array"
	case '"':
		return "a string"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	default:
		return "a number"
	}
}

// syntaxError describes where invalid JSON goes wrong.
func syntaxError(body []byte) string {
	var v any
	err := json.Unmarshal(body, &v)
	var syntax *json.SyntaxError
	switch {
	case errors.As(err, &syntax):
		return fmt.Sprintf("%s (at byte %d)", syntax.Error(), syntax.Offset)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "unexpected end of input"
	case err != nil:
		return err.Error()
	}
	return "unknown error"
}
