package testenv

import (
	"bytes"
	"io"
	"net/http"
	"testing"
	"time"
)

// Event is a CloudEvent as a test sends it in binary mode.
type Event struct {
	ID, Source, Type string
	ContentType      string // sent as Content-Type; omitted when empty
	Data             []byte
	// Extensions are sent as ce-<name> headers.
	Extensions map[string]string
}

// Response is what an endpoint answered.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

var httpClient = &http.Client{Timeout: 60 * time.Second}

// PostEvent sends e in binary mode, as the brokers and sources do.
func PostEvent(t testing.TB, url string, e Event) Response {
	t.Helper()
	resp, err := SendEvent(url, e)
	if err != nil {
		t.Fatalf("posting event %s to %s: %v", e.ID, url, err)
	}
	return resp
}

// SendEvent is PostEvent for goroutines: it returns the error.
func SendEvent(url string, e Event) (Response, error) {
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(e.Data))
	if err != nil {
		return Response{}, err
	}
	req.Header.Set("ce-specversion", "1.0")
	req.Header.Set("ce-id", e.ID)
	req.Header.Set("ce-source", e.Source)
	req.Header.Set("ce-type", e.Type)
	for k, v := range e.Extensions {
		req.Header.Set("ce-"+k, v)
	}
	if e.ContentType != "" {
		req.Header.Set("Content-Type", e.ContentType)
	}
	return do(req)
}

// Post sends a plain request.
func Post(t testing.TB, url, contentType string, body []byte, header map[string]string) Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := do(req)
	if err != nil {
		t.Fatalf("posting to %s: %v", url, err)
	}
	return resp
}

func do(req *http.Request) (Response, error) {
	resp, err := httpClient.Do(req)
	if err != nil {
		return Response{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return Response{Status: resp.StatusCode, Header: resp.Header, Body: body}, err
}
