package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/clima-dev/clima/events"
	"github.com/clima-dev/clima/internal/store"
	"github.com/clima-dev/clima/internal/testenv"
)

// badBody is one kind of bad input: a body and the content type it comes
// with, and the status the legacy /input answers it with.
type badBody struct {
	name        string
	body        string
	contentType string
	status      int
}

func rep(description, country, weather string) string {
	return fmt.Sprintf(`{"description":%q,"country":%q,"weather":%q}`, description, country, weather)
}

func badBodies() []badBody {
	ok := rep("x", "GT", "sol")
	arrayOf := func(n int, last string) string {
		items := make([]string, n)
		for i := range items {
			items[i] = ok
		}
		if last != "" {
			items[n-1] = last
		}
		return "[" + strings.Join(items, ",") + "]"
	}
	json400 := func(name, body string) badBody { return badBody{name, body, "application/json", 400} }
	return []badBody{
		json400("malformed object", `{"description"`),
		json400("truncated array", `[`+ok+`,`),
		json400("trailing garbage", ok+` x`),
		json400("single quotes", `{'description':'x','country':'GT','weather':'sol'}`),
		json400("NaN", `{"description":NaN,"country":"GT","weather":"sol"}`),
		json400("empty body", ``),
		json400("whitespace body", " \n\t\r "),
		json400("null", `null`),
		json400("boolean", `true`),
		json400("number", `42`),
		json400("string", `"llueve"`),
		json400("empty array", `[]`),
		json400("array of null", `[null]`),
		json400("array of numbers", `[1,2,3]`),
		json400("array of arrays", `[[]]`),
		json400("empty object", `{}`),
		json400("missing description", `{"country":"GT","weather":"sol"}`),
		json400("missing country", `{"description":"x","weather":"sol"}`),
		json400("missing weather", `{"description":"x","country":"GT"}`),
		json400("empty description", rep("", "GT", "sol")),
		json400("empty country", rep("x", "", "sol")),
		json400("empty weather", rep("x", "GT", "")),
		json400("blank description", rep("   ", "GT", "sol")),
		json400("description of 281 characters", rep(strings.Repeat("a", 281), "GT", "sol")),
		json400("description of 10,000 characters", rep(strings.Repeat("a", 10_000), "GT", "sol")),
		json400("country of 65 characters", rep("x", strings.Repeat("P", 65), "sol")),
		json400("unknown weather", rep("x", "GT", "granizo")),
		json400("weather as a number", `{"description":"x","country":"GT","weather":1}`),
		json400("weather as an array", `{"description":"x","country":"GT","weather":["sol"]}`),
		json400("weather as an object", `{"description":"x","country":"GT","weather":{"v":"sol"}}`),
		json400("weather as a boolean", `{"description":"x","country":"GT","weather":true}`),
		json400("country as a number", `{"description":"x","country":502,"weather":"sol"}`),
		json400("description as a number", `{"description":1,"country":"GT","weather":"sol"}`),
		json400("huge exponent", `{"description":"x","country":1e999999,"weather":"sol"}`),
		json400("huge integer", `{"description":123456789012345678901234567890123456789,"country":"GT","weather":"sol"}`),
		json400("negative number", `{"description":"x","country":-1,"weather":"sol"}`),
		json400("null description", `{"description":null,"country":"GT","weather":"sol"}`),
		json400("duplicate key", `{"description":"x","country":"GT","country":"MX","weather":"sol"}`),
		json400("duplicate country aliases", `{"description":"x","country":"GT","pais":"MX","weather":"sol"}`),
		json400("duplicate weather aliases", `{"description":"x","country":"GT","weather":"sol","clima":"lluvia"}`),
		json400("invalid UTF-8 in a field", "{\"description\":\"\xff\xfe\",\"country\":\"GT\",\"weather\":\"sol\"}"),
		json400("invalid UTF-8 body", "\xff"),
		json400("NUL in description", `{"description":"a\u0000b","country":"GT","weather":"sol"}`),
		json400("tab in country", `{"description":"x","country":"G\tT","weather":"sol"}`),
		json400("deep nesting", strings.Repeat("[", 20_000)+strings.Repeat("]", 20_000)),
		json400("deep nesting in an unknown field", `{"x":`+strings.Repeat("[", 20_000)+strings.Repeat("]", 20_000)+`,"description":"x","country":"GT","weather":"sol"}`),
		json400("array of 10,001", arrayOf(10_001, "")),
		json400("one bad entry among 10,000", arrayOf(10_000, rep("x", "GT", "granizo"))),
		json400("byte order mark", "\ufeff"+ok),
		json400("UTF-16 body", "\xff\xfe{\x00}\x00"),
		{"body past 4 MiB", `"` + strings.Repeat("a", events.MaxBodyBytes) + `"`, "application/json", 413},
		{"text content type", ok, "text/plain", 415},
		{"XML content type", ok, "application/xml", 415},
		{"form content type", "description=x&country=GT&weather=sol", "application/x-www-form-urlencoded", 415},
		// Its content type is not a media type: the broker refuses it as an
		// invalid CloudEvent (datacontenttype) before ingest sees it.
		{"malformed content type", ok, "application/json; charset", 415},
	}
}

// badEvent is a request the broker ingress refuses: not a valid CloudEvent.
type badEvent struct {
	name   string
	header map[string]string
	body   string
}

func badEvents() []badEvent {
	ok := rep("x", "GT", "sol")
	binary := func(drop string, extra map[string]string) map[string]string {
		h := map[string]string{"ce-specversion": "1.0", "ce-id": "bad-1", "ce-source": "test/bad", "ce-type": events.TypeReported, "Content-Type": "application/json"}
		delete(h, drop)
		for k, v := range extra {
			h[k] = v
		}
		return h
	}
	return []badEvent{
		{"no CloudEvent headers", map[string]string{"Content-Type": "application/json"}, ok},
		{"no id", binary("ce-id", nil), ok},
		{"no source", binary("ce-source", nil), ok},
		{"no type", binary("ce-type", nil), ok},
		{"unknown specversion", binary("", map[string]string{"ce-specversion": "9.9"}), ok},
		{"malformed structured event", map[string]string{"Content-Type": "application/cloudevents+json"}, `{"specversion":"1.0","id":`},
		{"structured event without type", map[string]string{"Content-Type": "application/cloudevents+json"}, `{"specversion":"1.0","id":"1","source":"s"}`},
	}
}

// checkBadInput sends the corpus to the legacy /input and to the broker:
// every refusal is its documented 4xx with a JSON error, the stores do not
// change, no function dies, and ingest's goroutines and memory return.
func checkBadInput(t *testing.T, d *devRun, want *expected) {
	bodies, evs := badBodies(), badEvents()
	if len(bodies) < 50 {
		t.Fatalf("the corpus has %d kinds, want at least 50", len(bodies))
	}
	ingest := d.endpoints.Services["ingest"]
	exitsBefore := map[string]int{}
	for name, s := range d.status(t).Services {
		exitsBefore[name] = s.Exits
	}
	goroutines, rss := ingestLevels(t, d)

	for _, c := range bodies {
		resp := testenv.Post(t, ingest+"/input", c.contentType, []byte(c.body), nil)
		checkRefusal(t, "/input "+c.name, resp, c.status)
	}
	accepted := 0
	for i, c := range bodies {
		// At the broker a valid CloudEvent is taken (202) whatever its data:
		// ingest then refuses the data with the same 4xx, and the event goes
		// to dead-letter, where it is counted.
		resp, err := testenv.SendEvent(d.endpoints.Broker, testenv.Event{ID: "bad-" + strconv.Itoa(i), Source: "test/bad", Type: events.TypeReported, ContentType: c.contentType, Data: []byte(c.body)})
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := mime.ParseMediaType(c.contentType); err != nil {
			checkRefusal(t, "broker "+c.name, resp, http.StatusBadRequest)
			continue
		}
		if resp.Status != http.StatusAccepted {
			t.Fatalf("broker %s: %d %s, want 202", c.name, resp.Status, resp.Body)
		}
		accepted++
	}
	for _, c := range evs {
		resp := testenv.Post(t, d.endpoints.Broker, "", []byte(c.body), c.header)
		checkRefusal(t, "broker "+c.name, resp, http.StatusBadRequest)
	}
	want.dead += int64(accepted)
	d.awaitStores(t, want, 2*time.Minute) // nothing stored, every accepted bad event dead-lettered
	checkDeadLetter(t, d, bodies, "unknown weather")

	for name, s := range d.status(t).Services {
		if s.Exits != exitsBefore[name] {
			t.Errorf("%s died %d times under bad input", name, s.Exits-exitsBefore[name])
		}
	}
	testenv.Eventually(t, 30*time.Second, func() error {
		g, r := ingestLevels(t, d)
		if g > goroutines+3 || r > rss+64<<20 {
			return fmt.Errorf("ingest runs %d goroutines (was %d), RSS %d MB (was %d MB)", g, goroutines, r>>20, rss>>20)
		}
		return nil
	}, "ingest's goroutines and memory to return to their level")
	t.Logf("%d kinds of bad body at /input and at the broker, %d invalid CloudEvents: all refused, %d dead letters, stores unchanged",
		len(bodies), len(evs), accepted)
}

// checkDeadLetter finds the dead letter of the bad event that carried the
// named body and checks what Knative's dispatcher added to it: where it
// failed, the status, and ingest's answer.
func checkDeadLetter(t *testing.T, d *devRun, bodies []badBody, name string) {
	t.Helper()
	i := slices.IndexFunc(bodies, func(b badBody) bool { return b.name == name })
	entries, err := client(t, d.endpoints.Redis).XRange(context.Background(), store.KeyDeadStream, "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		var rec struct {
			Attributes map[string]any `json:"attributes"`
		}
		if err := json.Unmarshal([]byte(e.Values["event"].(string)), &rec); err != nil || rec.Attributes["id"] != "bad-"+strconv.Itoa(i) {
			continue
		}
		answer, _ := base64.StdEncoding.DecodeString(fmt.Sprint(rec.Attributes["knativeerrordata"]))
		if rec.Attributes["knativeerrorcode"] != "400" || !strings.HasPrefix(fmt.Sprint(rec.Attributes["knativeerrordest"]), d.endpoints.Services["ingest"]) ||
			!strings.Contains(string(answer), `"error":"`) || !strings.Contains(string(answer), "granizo") {
			t.Fatalf("dead letter of %q: %v (knativeerrordata %q)", name, rec.Attributes, answer)
		}
		if reason := e.Values["reason"]; !strings.HasPrefix(fmt.Sprint(reason), events.TypeReported+": 400 from "+d.endpoints.Services["ingest"]) {
			t.Fatalf("dead letter of %q recorded with reason %q", name, reason)
		}
		return
	}
	t.Fatalf("no dead letter of %q (bad-%d) among %d", name, i, len(entries))
}

func checkRefusal(t *testing.T, what string, resp testenv.Response, status int) {
	t.Helper()
	var body struct{ Error string }
	if resp.Status != status || resp.Header.Get("Content-Type") != "application/json" || json.Unmarshal(resp.Body, &body) != nil || body.Error == "" {
		t.Errorf("%s: %d %q (%s), want %d with a JSON error", what, resp.Status, truncate(resp.Body), resp.Header.Get("Content-Type"), status)
	}
}

func truncate(b []byte) string {
	if len(b) > 200 {
		return string(b[:200]) + "…"
	}
	return string(b)
}

// ingestLevels reads the goroutines of ingest's process (its liveness
// answer) and its resident memory.
func ingestLevels(t *testing.T, d *devRun) (goroutines int, rss int64) {
	t.Helper()
	resp, err := http.Get(d.endpoints.Services["ingest"] + "/health/liveness")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var live struct{ Goroutines int }
	if err := json.NewDecoder(resp.Body).Decode(&live); err != nil {
		t.Fatal(err)
	}
	pids := d.status(t).Services["ingest"].PIDs
	if len(pids) == 0 {
		return live.Goroutines, 0
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pids[0]))
	if err != nil {
		return live.Goroutines, 0
	}
	for _, line := range strings.Split(string(status), "\n") {
		if kb, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(kb), " kB"), 10, 64)
			rss = n << 10
		}
	}
	return live.Goroutines, rss
}
