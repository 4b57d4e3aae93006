package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/clima-dev/clima/events"
	"github.com/clima-dev/clima/internal/fnruntime"
	"github.com/clima-dev/clima/internal/testenv"
)

// sink stands in for the Broker's ingress: it takes CloudEvents over HTTP,
// answers 202 as the Kafka broker does, and remembers them.
type sink struct {
	mu     sync.Mutex
	events []event.Event
	status int
}

func (s *sink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	e, err := cloudevents.NewEventFromHTTPRequest(r)
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case err != nil:
		w.WriteHeader(http.StatusBadRequest)
	case s.status != 0:
		w.WriteHeader(s.status)
	default:
		s.events = append(s.events, *e)
		w.WriteHeader(http.StatusAccepted)
	}
}

func (s *sink) received() []event.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]event.Event(nil), s.events...)
}

// startIngest serves the ingest function, built from its environment as in
// production, with its K_SINK pointing at a fresh sink.
func startIngest(t *testing.T) (string, *sink) {
	t.Helper()
	s := &sink{}
	broker := httptest.NewServer(s)
	t.Cleanup(broker.Close)
	env := testenv.Env(map[string]string{"K_SINK": broker.URL, "SINK_TIMEOUT": "30s"})
	fn, err := build(context.Background(), env, fnruntime.NewLogger("ingest-test"))
	if err != nil || env.Err() != nil {
		t.Fatalf("building ingest: %v %v", err, env.Err())
	}
	return testenv.ServeFunction(t, fn, fnruntime.NewLogger("ingest-test")), s
}

func report(description, country, weather string) string {
	return fmt.Sprintf(`{"description":%q,"country":%q,"weather":%q}`, description, country, weather)
}

func array(n int) string {
	var b strings.Builder
	b.WriteString("[")
	for i := range n {
		if i > 0 {
			b.WriteString(",")
		}
		b.WriteString(report(fmt.Sprintf("reporte %d", i), "GT", "sunny"))
	}
	b.WriteString("]")
	return b.String()
}

type inputCase struct {
	name        string
	body        string
	contentType string // default application/json
	status      int
	// for an accepted body: the reports it becomes
	want []events.Report
	// for a refused body: the exact error and problems
	error    string
	problems []events.Problem
}

func ok(description, country string, weather events.Weather) events.Report {
	return events.Report{Description: description, Country: country, Weather: weather}
}

func problem(index int, field, message string) []events.Problem {
	return []events.Problem{{Index: index, Field: field, Message: message}}
}

var (
	desc280   = strings.Repeat("a", 280)
	desc281   = strings.Repeat("a", 281)
	desc280ñ  = strings.Repeat("ñ", 280)
	country64 = strings.Repeat("P", 64)
	country65 = strings.Repeat("P", 65)
	oneValid  = []events.Report{ok("llueve", "GT", events.Rainy)}
)

var inputCases = []inputCase{
	{name: "canonical report", body: report("llueve", "GT", "Lluvioso"), status: 202, want: oneValid},
	{name: "english weather synonym", body: report("llueve", "GT", "rainy"), status: 202, want: oneValid},
	{name: "legacy capitalised keys", body: `{"Description":"llueve","Country":"GT","Weather":"Lluvioso"}`, status: 202, want: oneValid},
	{name: "legacy spanish keys", body: `{"descripcion":"llueve","pais":"GT","clima":"Lluvioso"}`, status: 202, want: oneValid},
	{name: "spanish keys in upper case", body: `{"DESCRIPCION":"llueve","PAIS":"GT","CLIMA":"LLUVIOSO"}`, status: 202, want: oneValid},
	{name: "spanish keys with accents", body: `{"descripción":"llueve","país":"GT","clima":"lluvia"}`, status: 202, want: oneValid},
	{name: "synonym nublado", body: report("gris", "MX", "Nublado"), status: 202, want: []events.Report{ok("gris", "MX", events.Cloudy)}},
	{name: "synonym in any case with spaces", body: report("sol", "MX", "  SUNNY "), status: 202, want: []events.Report{ok("sol", "MX", events.Sunny)}},
	{name: "fields are trimmed", body: report("  nubes  ", " SV ", "cloudy"), status: 202, want: []events.Report{ok("nubes", "SV", events.Cloudy)}},
	{name: "two-letter code upper-cased", body: report("x", "gt", "sol"), status: 202, want: []events.Report{ok("x", "GT", events.Sunny)}},
	{name: "three-letter code upper-cased", body: report("x", "usa", "sol"), status: 202, want: []events.Report{ok("x", "USA", events.Sunny)}},
	{name: "country name kept as written", body: report("x", "Guatemala", "sol"), status: 202, want: []events.Report{ok("x", "Guatemala", events.Sunny)}},
	{name: "unknown keys ignored", body: `{"description":"x","country":"GT","weather":"sol","id":"mine","extra":{"a":[1]}}`, status: 202, want: []events.Report{ok("x", "GT", events.Sunny)}},
	{name: "description of 280 characters", body: report(desc280, "GT", "sol"), status: 202, want: []events.Report{ok(desc280, "GT", events.Sunny)}},
	{name: "description of 280 multibyte characters", body: report(desc280ñ, "GT", "sol"), status: 202, want: []events.Report{ok(desc280ñ, "GT", events.Sunny)}},
	{name: "description of 281 characters", body: report(desc281, "GT", "sol"), status: 400,
		error: "1 of 1 reports are invalid", problems: problem(0, "description", "has 281 characters, at most 280 are allowed")},
	{name: "country of 64 characters", body: report("x", country64, "sol"), status: 202, want: []events.Report{ok("x", country64, events.Sunny)}},
	{name: "country of 65 characters", body: report("x", country65, "sol"), status: 400,
		error: "1 of 1 reports are invalid", problems: problem(0, "country", "has 65 characters, at most 64 are allowed")},
	{name: "blank description", body: report("   ", "GT", "sol"), status: 400,
		error: "1 of 1 reports are invalid", problems: problem(0, "description", "is required")},
	{name: "missing weather", body: `{"description":"x","country":"GT"}`, status: 400,
		error: "1 of 1 reports are invalid", problems: problem(0, "weather", "is required")},
	{name: "null description", body: `{"description":null,"country":"GT","weather":"sol"}`, status: 400,
		error: "1 of 1 reports are invalid", problems: problem(0, "description", "is required")},
	{name: "unknown weather", body: report("x", "GT", "foggy"), status: 400,
		error: "1 of 1 reports are invalid", problems: problem(0, "weather", `"foggy" is not a known weather; use Lluvioso, Nubloso or Soleado`)},
	{name: "weather as a number", body: `{"description":"x","country":"GT","weather":3}`, status: 400,
		error: "1 of 1 reports are invalid", problems: problem(0, "weather", "must be a string, not a number")},
	{name: "country as an object", body: `{"description":"x","country":{"code":"GT"},"weather":"sol"}`, status: 400,
		error: "1 of 1 reports are invalid", problems: problem(0, "country", "must be a string, not an object")},
	{name: "country with a control character", body: `{"description":"x","country":"G\tT","weather":"sol"}`, status: 400,
		error: "1 of 1 reports are invalid", problems: problem(0, "country", "contains characters that are not printable")},
	{name: "description with a control character", body: `{"description":"a\u0007b","country":"GT","weather":"sol"}`, status: 400,
		error: "1 of 1 reports are invalid", problems: problem(0, "description", "contains control characters")},
	{name: "same field under two spellings", body: `{"description":"x","country":"GT","pais":"MX","weather":"sol"}`, status: 400,
		error: "1 of 1 reports are invalid", problems: problem(0, "country", `is given twice ("country" and "pais")`)},
	{name: "same key twice", body: `{"description":"x","country":"GT","country":"MX","weather":"sol"}`, status: 400,
		error: "1 of 1 reports are invalid", problems: problem(0, "country", `is given twice ("country" and "country")`)},
	{name: "array of two", body: "[" + report("a", "GT", "sol") + "," + report("b", "MX", "lluvia") + "]", status: 202,
		want: []events.Report{ok("a", "GT", events.Sunny), ok("b", "MX", events.Rainy)}},
	{name: "array with one bad entry", body: "[" + report("a", "GT", "sol") + "," + report("b", "MX", "hail") + "," + report("c", "SV", "sol") + "]", status: 400,
		error: "1 of 3 reports are invalid", problems: problem(1, "weather", `"hail" is not a known weather; use Lluvioso, Nubloso or Soleado`)},
	{name: "array entry that is not an object", body: `[1]`, status: 400,
		error: "1 of 1 reports are invalid", problems: problem(0, "", "must be a report object, not a number")},
	{name: "array of 10,000", body: array(10_000), status: 202},
	{name: "array of 10,001", body: array(10_001), status: 400, error: "too many reports: at most 10000 in one request"},
	{name: "empty array", body: `[]`, status: 400, error: "the array holds no reports"},
	{name: "empty body", body: ``, status: 400, error: "body is empty: send one report object or an array of reports"},
	{name: "whitespace body", body: " \n\t ", status: 400, error: "body is empty: send one report object or an array of reports"},
	{name: "truncated JSON", body: `{"description":"x","coun`, status: 400, error: "body is not valid JSON: unexpected end of JSON input (at byte 24)"},
	{name: "malformed JSON", body: `{"description" "x"}`, status: 400, error: "body is not valid JSON: invalid character '\"' after object key (at byte 16)"},
	{name: "trailing data", body: report("x", "GT", "sol") + ` {}`, status: 400, error: "body is not valid JSON: invalid character '{' after top-level value (at byte 52)"},
	{name: "a string instead of a report", body: `"llueve"`, status: 400, error: "body must be a report object or an array of reports, not a string"},
	{name: "a number instead of a report", body: `1e999`, status: 400, error: "body must be a report object or an array of reports, not a number"},
	{name: "invalid UTF-8", body: "{\"description\":\"\xff\xfe\",\"country\":\"GT\",\"weather\":\"sol\"}", status: 400, error: "body is not valid UTF-8"},
	{name: "deep nesting", body: strings.Repeat("[", 20_000) + strings.Repeat("]", 20_000), status: 400, error: "body is not valid JSON: invalid character '[' exceeded max depth (at byte 10001)"},
	{name: "text content type", body: report("x", "GT", "sol"), contentType: "text/plain", status: 415, error: `content type "text/plain" is not JSON`},
	{name: "body past the limit", body: `"` + strings.Repeat("a", events.MaxBodyBytes) + `"`, status: 413, error: "body is larger than 4194304 bytes"},
}

// TestInputCases sends every case to the legacy endpoint and, as the data of
// a clima.weather.reported event, to the Trigger endpoint: both answer with
// the same status and error.
func TestInputCases(t *testing.T) {
	url, broker := startIngest(t)
	for _, c := range inputCases {
		contentType := c.contentType
		if contentType == "" {
			contentType = "application/json"
		}
		t.Run(c.name+"/input", func(t *testing.T) {
			before := len(broker.received())
			resp := testenv.Post(t, url+"/input", contentType, []byte(c.body), nil)
			if resp.Status != c.status {
				t.Fatalf("status %d (%.300s), want %d", resp.Status, resp.Body, c.status)
			}
			sent := broker.received()[before:]
			if c.status != http.StatusAccepted {
				checkRefusal(t, c, resp)
				if len(sent) != 0 {
					t.Fatalf("a refused request sent %d events", len(sent))
				}
				return
			}
			// A large request goes out in chunks of events.ChunkReports.
			var reports []events.Report
			ids := map[string]bool{}
			for _, e := range sent {
				reports = append(reports, checkValidated(t, c, e, len(sent) == 1)...)
				ids[e.ID()] = true
			}
			if want := (len(reports) + events.ChunkReports - 1) / events.ChunkReports; len(sent) != want || len(ids) != want {
				t.Fatalf("sent %d events (%d ids) for %d reports, want %d", len(sent), len(ids), len(reports), want)
			}
			var body struct{ Accepted int }
			if err := json.Unmarshal(resp.Body, &body); err != nil || body.Accepted != len(reports) {
				t.Fatalf("answer %s, want accepted = %d", resp.Body, len(reports))
			}
		})
		t.Run(c.name+"/event", func(t *testing.T) {
			resp := testenv.PostEvent(t, url+"/", testenv.Event{ID: "case-" + c.name, Source: "test/cases", Type: events.TypeReported, ContentType: contentType, Data: []byte(c.body)})
			if resp.Status != statusOfEvent(c.status) {
				t.Fatalf("status %d (%.300s), want %d", resp.Status, resp.Body, statusOfEvent(c.status))
			}
			if resp.Status >= 300 {
				checkRefusal(t, c, resp)
				return
			}
			checkValidated(t, c, replyOf(t, resp), true)
		})
	}
}

// statusOfEvent: a Trigger subscriber answers 200 with its reply where the
// legacy endpoint answers 202.
func statusOfEvent(status int) int {
	if status == http.StatusAccepted {
		return http.StatusOK
	}
	return status
}

func checkRefusal(t *testing.T, c inputCase, resp testenv.Response) {
	t.Helper()
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("refusal content type %q, want application/json", ct)
	}
	var got events.InvalidError
	if err := json.Unmarshal(resp.Body, &got); err != nil {
		t.Fatalf("refusal %q is not JSON: %v", resp.Body, err)
	}
	if got.Reason != c.error {
		t.Errorf("error %q, want %q", got.Reason, c.error)
	}
	if fmt.Sprint(got.Problems) != fmt.Sprint(c.problems) {
		t.Errorf("problems %+v, want %+v", got.Problems, c.problems)
	}
}

// checkValidated checks a validated event and returns its reports; whole
// says whether they are all the case's reports, to compare with its want.
func checkValidated(t *testing.T, c inputCase, e event.Event, whole bool) []events.Report {
	t.Helper()
	if e.Type() != events.TypeValidated || e.Source() != events.SourceIngest {
		t.Fatalf("event %s from %s, want %s from %s", e.Type(), e.Source(), events.TypeValidated, events.SourceIngest)
	}
	reports, err := events.DecodeReports(e.Data())
	if err != nil {
		t.Fatalf("validated data does not decode: %v", err)
	}
	if c.want != nil && whole {
		if len(reports) != len(c.want) {
			t.Fatalf("%d reports, want %d", len(reports), len(c.want))
		}
		for i, r := range reports {
			w := c.want[i]
			if r.Description != w.Description || r.Country != w.Country || r.Weather != w.Weather {
				t.Errorf("report %d = %q/%q/%q, want %q/%q/%q", i, r.Description, r.Country, r.Weather, w.Description, w.Country, w.Weather)
			}
		}
	}
	return reports
}

// replyOf reads a 2xx answer, which must be a CloudEvent in binary mode.
func replyOf(t *testing.T, resp testenv.Response) event.Event {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(resp.Body))
	req.Header = resp.Header
	e, err := cloudevents.NewEventFromHTTPRequest(req)
	if err != nil || resp.Header.Get("ce-specversion") == "" {
		t.Fatalf("2xx answer is not a binary-mode CloudEvent (%v): %.200q", err, resp.Body)
	}
	return *e
}

func TestRedeliveredEventGetsTheSameIDs(t *testing.T) {
	url, _ := startIngest(t)
	sendTwice := func(source, id string) (event.Event, event.Event) {
		e := testenv.Event{ID: id, Source: source, Type: events.TypeReported, ContentType: "application/json",
			Data: []byte("[" + report("a", "GT", "sol") + "," + report("b", "MX", "nublado") + "]")}
		return replyOf(t, testenv.PostEvent(t, url, e)), replyOf(t, testenv.PostEvent(t, url, e))
	}
	first, again := sendTwice("client/1", "event-1")
	other, _ := sendTwice("client/1", "event-2")
	if first.ID() != again.ID() {
		t.Errorf("reply ids differ: %s, %s", first.ID(), again.ID())
	}
	if first.ID() == other.ID() {
		t.Errorf("another event got the same reply id %s", first.ID())
	}
	ids := func(e event.Event) []string {
		reports, err := events.DecodeReports(e.Data())
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, r := range reports {
			out = append(out, r.ID)
		}
		return out
	}
	if a, b := ids(first), ids(again); fmt.Sprint(a) != fmt.Sprint(b) || a[0] == a[1] {
		t.Errorf("report ids %v then %v, want the same two distinct ids", a, b)
	}
	if a, c := ids(first), ids(other); a[0] == c[0] {
		t.Errorf("another event reused report id %s", a[0])
	}
}

func TestInputHonoursIdempotencyKey(t *testing.T) {
	url, broker := startIngest(t)
	body := []byte("[" + report("a", "GT", "sol") + "," + report("b", "MX", "nublado") + "]")
	post := func(key string) event.Event {
		header := map[string]string{}
		if key != "" {
			header["Idempotency-Key"] = key
		}
		resp := testenv.Post(t, url+"/input", "application/json", body, header)
		// The exact answer README.md and docs/decisions.md document.
		if want := `{"accepted":2,"events":1,"idempotency_key":"` + key + `"}`; resp.Status != http.StatusAccepted || key != "" && strings.TrimSpace(string(resp.Body)) != want {
			t.Fatalf("%d %s, want 202 %s", resp.Status, resp.Body, want)
		}
		sent := broker.received()
		return sent[len(sent)-1]
	}
	first, retry, fresh, keyless := post("order-7"), post("order-7"), post("order-8"), post("")
	if first.ID() != retry.ID() || string(idsOf(t, first)) != string(idsOf(t, retry)) {
		t.Errorf("a retry with the same key got other ids")
	}
	if first.ID() == fresh.ID() || first.ID() == keyless.ID() || string(idsOf(t, first)) == string(idsOf(t, keyless)) {
		t.Errorf("another key, or none, reused the ids")
	}
}

func idsOf(t *testing.T, e event.Event) []byte {
	t.Helper()
	reports, err := events.DecodeReports(e.Data())
	if err != nil {
		t.Fatal(err)
	}
	ids, _ := json.Marshal([]string{reports[0].ID, reports[1].ID})
	return ids
}

func TestInputAnswers503WhenTheBrokerRefuses(t *testing.T) {
	url, broker := startIngest(t)
	broker.status = http.StatusServiceUnavailable
	resp := testenv.Post(t, url+"/input", "application/json", []byte(report("x", "GT", "sol")), nil)
	if resp.Status != http.StatusServiceUnavailable || !strings.Contains(string(resp.Body), "retry with the same Idempotency-Key") {
		t.Fatalf("%d %s, want 503 asking for a retry", resp.Status, resp.Body)
	}
}

func TestEventRefusals(t *testing.T) {
	url, _ := startIngest(t)
	cases := []struct {
		name   string
		header map[string]string
		body   string
		status int
		error  string
	}{
		{"not a CloudEvent", map[string]string{"Content-Type": "application/json"}, report("x", "GT", "sol"), 415,
			"not a CloudEvent: send binary mode (ce-* headers) or structured mode (Content-Type application/cloudevents+json)"},
		{"no id", map[string]string{"ce-specversion": "1.0", "ce-source": "s", "ce-type": events.TypeReported, "Content-Type": "application/json"}, report("x", "GT", "sol"), 400,
			"invalid CloudEvent: id: MUST be a non-empty string\n"},
		{"wrong type", map[string]string{"ce-specversion": "1.0", "ce-id": "1", "ce-source": "s", "ce-type": "other", "Content-Type": "application/json"}, report("x", "GT", "sol"), 400,
			`event type "other" is not clima.weather.reported`},
		{"broken structured event", map[string]string{"Content-Type": "application/cloudevents+json"}, `{"specversion":"1.0",`, 400,
			"invalid CloudEvent: unexpected end of JSON input"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp := testenv.Post(t, url, "", []byte(c.body), c.header)
			var body struct{ Error string }
			_ = json.Unmarshal(resp.Body, &body)
			if resp.Status != c.status || body.Error != c.error {
				t.Fatalf("%d %q, want %d %q", resp.Status, body.Error, c.status, c.error)
			}
		})
	}
}
