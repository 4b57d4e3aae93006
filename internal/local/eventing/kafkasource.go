package eventing

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/segmentio/kafka-go"
	duckv1 "knative.dev/pkg/apis/duck/v1"
)

// kafkaSource delivers the records of its topics as the KafkaSource does.
// The record → CloudEvent mapping is written here because the KafkaSource's
// own code (knative.dev/eventing-kafka-broker) is not served as a module.
type kafkaSource struct {
	namespace, name string
	sink            duckv1.Addressable
	policy          policy
	sender          *sender
	counters
}

var notAlnum = regexp.MustCompile(`[^a-z0-9]`)

// toEvent makes of a record the CloudEvent the KafkaSource sends: the record
// itself when it is a CloudEvent, else a dev.knative.kafka.event.
func (s *kafkaSource) toEvent(m kafka.Message) (*event.Event, error) {
	headers := recordHeaders(m)
	if headers["ce_specversion"] != "" || strings.HasPrefix(headers["content-type"], "application/cloudevents") {
		return recordAsCloudEvent(m, headers)
	}
	e := event.New()
	e.SetID(fmt.Sprintf("partition:%d/offset:%d", m.Partition, m.Offset))
	e.SetSource(fmt.Sprintf("/apis/v1/namespaces/%s/kafkasources/%s#%s", s.namespace, s.name, m.Topic))
	e.SetType("dev.knative.kafka.event")
	e.SetSubject(fmt.Sprintf("partition:%d#%d", m.Partition, m.Offset))
	if !m.Time.IsZero() {
		e.SetTime(m.Time)
	}
	if m.Key != nil {
		e.SetExtension("key", string(m.Key))
		e.SetExtension("partitionkey", string(m.Key))
	}
	for name, value := range headers {
		if name == "content-type" {
			continue
		}
		if ext := "kafkaheader" + notAlnum.ReplaceAllString(name, ""); len(ext) <= 20 {
			e.SetExtension(ext, value)
		}
	}
	e.SetDataContentType(headers["content-type"])
	e.DataEncoded = m.Value
	return &e, nil
}

// recordHeaders maps a record's header names, lower-cased, to their values.
func recordHeaders(m kafka.Message) map[string]string {
	headers := make(map[string]string, len(m.Headers))
	for _, h := range m.Headers {
		headers[strings.ToLower(h.Key)] = string(h.Value)
	}
	return headers
}

// recordAsCloudEvent reads a record written as a CloudEvent (binary mode:
// ce_ headers; structured mode: the JSON event as value).
func recordAsCloudEvent(m kafka.Message, headers map[string]string) (*event.Event, error) {
	if headers["ce_specversion"] == "" {
		var e event.Event
		if err := json.Unmarshal(m.Value, &e); err != nil {
			return nil, err
		}
		return &e, nil
	}
	e := event.New()
	e.SetID(headers["ce_id"])
	e.SetSource(headers["ce_source"])
	e.SetType(headers["ce_type"])
	for name, value := range headers {
		attr, ok := strings.CutPrefix(name, "ce_")
		if !ok || attr == "specversion" || attr == "id" || attr == "source" || attr == "type" {
			continue
		}
		switch attr {
		case "subject":
			e.SetSubject(value)
		case "dataschema":
			e.SetDataSchema(value)
		case "time":
			if t, err := time.Parse(time.RFC3339Nano, value); err == nil {
				e.SetTime(t)
			}
		default:
			e.SetExtension(attr, value)
		}
	}
	e.SetDataContentType(headers["content-type"])
	e.DataEncoded = m.Value
	return &e, e.Validate()
}

func (s *kafkaSource) handle(ctx context.Context, m kafka.Message) bool {
	e, err := s.toEvent(m)
	if err != nil {
		s.failed.Add(1)
		return true
	}
	s.inFlight.Add(1)
	defer s.inFlight.Add(-1)
	result, done := s.sender.deliverAll(ctx, s.sink, e, s.policy, nil)
	if done {
		s.count(result)
	}
	return done
}
