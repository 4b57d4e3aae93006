package main

import (
	"context"
	"net/http"
	"testing"

	"github.com/clima-dev/clima/internal/fnruntime"
	"github.com/clima-dev/clima/internal/store"
	"github.com/clima-dev/clima/internal/testenv"
)

func TestRecordsEachDeadLetterOnce(t *testing.T) {
	redis := testenv.StartRedis(t)
	url, password := redis.As(store.RoleDeadLetter)
	env := testenv.Env(map[string]string{"STORE_URL": url, "STORE_PASSWORD": password})
	fn, err := build(context.Background(), env, fnruntime.NewLogger("dead-letter-test"))
	if err != nil || env.Err() != nil {
		t.Fatalf("building dead-letter: %v %v", err, env.Err())
	}
	t.Cleanup(func() { _ = fn.Close(context.Background()) })
	fnURL := testenv.ServeFunction(t, fn, fnruntime.NewLogger("dead-letter-test"))

	refused := testenv.Event{ID: "e-1", Source: "client/1", Type: "clima.weather.reported", ContentType: "application/json",
		Data: []byte(`{"weather":"foggy"}`), Extensions: map[string]string{"knativeerrorcode": "400", "knativeerrordest": "http://ingest.clima.svc"}}
	// Data that is not the JSON its content type claims is kept as it came.
	odd := testenv.Event{ID: "e-2", Source: "client/1", Type: "something.else", ContentType: "application/json", Data: []byte(`{"broken":`)}
	for _, e := range []testenv.Event{refused, refused, odd} { // refused arrives twice
		if resp := testenv.PostEvent(t, fnURL, e); resp.Status != http.StatusOK || len(resp.Body) != 0 {
			t.Fatalf("event %s: %d %q, want 200 with an empty body", e.ID, resp.Status, resp.Body)
		}
	}

	client := redis.ClientAs(t, store.RoleReader)
	ctx := context.Background()
	if n, _ := client.Get(ctx, store.KeyDeadLetters).Int(); n != 2 {
		t.Errorf("%s = %d, want 2 (a redelivered dead letter counts once)", store.KeyDeadLetters, n)
	}
	reasons, _ := client.HGetAll(ctx, store.KeyDeadReasons).Result()
	if reasons["clima.weather.reported: 400 from http://ingest.clima.svc"] != "1" || reasons["something.else"] != "1" {
		t.Errorf("reasons = %v", reasons)
	}
	if n, _ := client.XLen(ctx, store.KeyDeadStream).Result(); n != 2 {
		t.Errorf("%s holds %d events, want 2", store.KeyDeadStream, n)
	}
}
