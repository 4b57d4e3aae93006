package consume_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/clima-dev/clima/events"
	"github.com/clima-dev/clima/internal/consume"
	"github.com/clima-dev/clima/internal/fnruntime"
	"github.com/clima-dev/clima/internal/store"
	"github.com/clima-dev/clima/internal/testenv"
)

// source is how one of the two sources delivers a record.
type source struct {
	name, eventType, eventSource string
}

var sources = []source{
	{"kafka", "dev.knative.kafka.event", "/apis/v1/namespaces/clima/kafkasources/clima-kafka-source#clima-topic"},
	{"rabbitmq", "dev.knative.rabbitmq.event", "/apis/v1/namespaces/clima/rabbitmqsources/clima-rabbitmq-source#clima-queue"},
}

type fixture struct {
	redis  *testenv.Redis
	store  *store.Store
	reader *redis.Client // Grafana's user
	url    string
}

func start(t testing.TB, path string) *fixture {
	t.Helper()
	r := testenv.StartRedis(t)
	cfg := r.StoreConfig(store.RoleConsumer, path)
	cfg.RecentMax = 100
	s := testenv.OpenStore(t, cfg)
	srv := httptest.NewServer(fnruntime.CloudEvents(consume.NewHandler(s, "kafka", 5*time.Second).Handle, fnruntime.NewLogger("test")))
	t.Cleanup(srv.Close)
	return &fixture{redis: r, store: s, reader: r.ClientAs(t, store.RoleReader), url: srv.URL}
}

func (f *fixture) stats(t testing.TB) store.Stats {
	t.Helper()
	st, err := store.ReadStats(context.Background(), f.reader)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// record is the event a source makes of the n-th record holding r.
func (s source) record(n int, r events.Report) testenv.Event {
	body, _ := json.Marshal(r)
	id := r.ID // the RabbitmqSource's id is the AMQP message-id
	if s.name == "kafka" {
		id = fmt.Sprintf("partition:%d/offset:%d", n%2, n)
	}
	return testenv.Event{ID: id, Source: s.eventSource, Type: s.eventType, ContentType: "application/json", Data: body}
}

func TestConsumerStoresARedeliveredReportOnce(t *testing.T) {
	for _, src := range sources {
		t.Run(src.name, func(t *testing.T) {
			f := start(t, src.name)
			r := testenv.Reports("redelivered", 1)[0]
			for delivery := range 3 {
				resp := testenv.PostEvent(t, f.url, src.record(delivery, r))
				if resp.Status != http.StatusOK || len(resp.Body) != 0 {
					t.Fatalf("delivery %d: %d %q, want 200 with an empty body", delivery, resp.Status, resp.Body)
				}
			}
			st := f.stats(t)
			if st.Total != 1 || st.Countries[r.Country] != 1 || st.Weathers[string(r.Weather)] != 1 {
				t.Fatalf("after 3 deliveries: %+v, want the report counted once", st)
			}
		})
	}
}

func TestConsumerStoresConcurrentReportsExactly(t *testing.T) {
	const reports, senders = 10_000, 8
	for _, src := range sources {
		t.Run(src.name, func(t *testing.T) {
			f := start(t, src.name)
			all := testenv.Reports("concurrent-"+src.name, reports)
			var wg sync.WaitGroup
			errs := make(chan error, senders)
			for s := range senders {
				wg.Go(func() {
					for i := s; i < len(all); i += senders {
						resp, err := testenv.SendEvent(f.url, src.record(i, all[i]))
						if err == nil && resp.Status != http.StatusOK {
							err = fmt.Errorf("report %d: status %d: %s", i, resp.Status, resp.Body)
						}
						if err != nil {
							errs <- err
							return
						}
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}

			st := f.stats(t)
			if st.Total != reports {
				t.Errorf("total_messages = %d, want %d", st.Total, reports)
			}
			if got := sum(st.Countries); got != reports {
				t.Errorf("country_counts sum to %d, want %d", got, reports)
			}
			if got := sum(st.Weathers); got != reports {
				t.Errorf("weather_counts sum to %d, want %d", got, reports)
			}
			for _, c := range testenv.Countries {
				if want := int64(reports / len(testenv.Countries)); st.Countries[c] != want {
					t.Errorf("country_counts[%s] = %d, want %d", c, st.Countries[c], want)
				}
			}
			if st.Latency.Count != reports || sum(st.Latency.Buckets) != reports {
				t.Errorf("latency histogram counts %d (buckets %d), want %d", st.Latency.Count, sum(st.Latency.Buckets), reports)
			}
			recent, err := f.reader.XLen(context.Background(), store.KeyRecent).Result()
			if err != nil || recent < 100 {
				t.Errorf("clima:recent holds %d entries (%v), want at least its cap of 100", recent, err)
			}
			fields, err := f.reader.HGetAll(context.Background(), store.ReportKey(all[7].Country, all[7].ID)).Result()
			if err != nil || fields["description"] != all[7].Description || fields["path"] != src.name {
				t.Errorf("report hash of %s = %v (%v)", all[7].ID, fields, err)
			}
		})
	}
}

func TestConsumerAnswers503WhileTheStoreIsDown(t *testing.T) {
	for _, src := range sources {
		t.Run(src.name, func(t *testing.T) {
			f := start(t, src.name)
			r := testenv.Reports("store-down", 1)[0]
			f.redis.Stop(t)
			resp := testenv.PostEvent(t, f.url, src.record(0, r))
			if resp.Status != http.StatusServiceUnavailable {
				t.Fatalf("with the store down: %d %s, want 503", resp.Status, resp.Body)
			}
			assertJSONError(t, resp)

			f.redis.Start(t)
			for redelivery := range 2 {
				testenv.Eventually(t, 10*time.Second, func() error {
					if resp := testenv.PostEvent(t, f.url, src.record(1, r)); resp.Status != http.StatusOK {
						return fmt.Errorf("status %d: %s", resp.Status, resp.Body)
					}
					return nil
				}, "redelivery %d to be stored", redelivery)
			}
			if st := f.stats(t); st.Total != 1 {
				t.Fatalf("after the store came back and 2 redeliveries: total %d, want 1", st.Total)
			}
		})
	}
}

func TestConsumerAcceptsARecordThatIsACloudEvent(t *testing.T) {
	f := start(t, "kafka")
	batch := testenv.Reports("structured", 3)
	data, _ := json.Marshal(batch)
	resp := testenv.PostEvent(t, f.url, testenv.Event{ID: "v-1", Source: events.SourceIngest, Type: events.TypeValidated, ContentType: "application/json", Data: data})
	if resp.Status != http.StatusOK {
		t.Fatalf("%d %s", resp.Status, resp.Body)
	}
	if st := f.stats(t); st.Total != 3 {
		t.Fatalf("total %d, want 3", st.Total)
	}
}

func TestConsumerRefusesBadRecordsAndStoresNothing(t *testing.T) {
	f := start(t, "kafka")
	good, _ := json.Marshal(testenv.Reports("bad", 1)[0])
	cases := []struct {
		name        string
		contentType string
		data        string
		status      int
		errorPrefix string
	}{
		{"not JSON", "application/json", `{"id":`, 400, "body is not valid JSON"},
		{"no id", "application/json", `{"description":"x","country":"GT","weather":"Soleado","accepted_at":"2026-01-01T00:00:00Z"}`, 400, "1 of 1 reports are invalid"},
		{"not canonical", "application/json", `{"id":"a","description":"x","country":"GT","weather":"sunny","accepted_at":"2026-01-01T00:00:00Z"}`, 400, "1 of 1 reports are invalid"},
		{"unknown field", "application/json", `{"id":"a","description":"x","country":"GT","weather":"Soleado","accepted_at":"2026-01-01T00:00:00Z","extra":1}`, 400, "1 of 1 reports are invalid"},
		{"wrong content type", "text/plain", string(good), 415, "data content type"},
		{"empty", "application/json", ``, 400, "body is empty"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp := testenv.PostEvent(t, f.url, testenv.Event{ID: c.name, Source: "test", Type: "dev.knative.kafka.event", ContentType: c.contentType, Data: []byte(c.data)})
			if resp.Status != c.status {
				t.Fatalf("status %d (%s), want %d", resp.Status, resp.Body, c.status)
			}
			if msg := assertJSONError(t, resp); len(msg) < len(c.errorPrefix) || msg[:len(c.errorPrefix)] != c.errorPrefix {
				t.Fatalf("error %q, want it to start with %q", msg, c.errorPrefix)
			}
		})
	}
	if st := f.stats(t); st.Total != 0 || len(st.Countries) != 0 {
		t.Fatalf("bad records changed the store: %+v", st)
	}
}

func assertJSONError(t *testing.T, resp testenv.Response) string {
	t.Helper()
	var body struct {
		Error string `json:"error"`
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("error content type %q, want application/json", ct)
	}
	if err := json.Unmarshal(resp.Body, &body); err != nil || body.Error == "" {
		t.Fatalf("error body %q is not {\"error\": …}", resp.Body)
	}
	return body.Error
}

func sum(m map[string]int64) int64 {
	var n int64
	for _, v := range m {
		n += v
	}
	return n
}
