package events

import (
	"fmt"
	"mime"
	"strconv"
	"strings"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/uuid"
)

// CloudEvent types that clima sends and receives.
const (
	// TypeReported carries what a client reports: one report object or an
	// array of them (DecodeSubmissions reads it).
	TypeReported = "clima.weather.reported"
	// TypeValidated carries the normalised batch as a JSON array of Report,
	// every report with its id and acceptance time (DecodeReports reads it).
	TypeValidated = "clima.weather.validated"
)

// Event sources of clima's own events.
const (
	// SourceIngest is the source of every clima.weather.validated event.
	SourceIngest = "/clima/ingest"
	// SourceLegacy is the source of reports posted to ingest's /input, whose
	// event id is the request's Idempotency-Key.
	SourceLegacy = "/clima/ingest/input"
)

// idNamespace makes clima's derived ids distinct from other name-based UUIDs.
var idNamespace = uuid.MustParse("6f0d5a3c-1e2b-4c7d-9a8e-2f4b6c8d0e1a")

// ReportID derives the id of the index-th report of the event identified by
// source and eventID, so a redelivered event yields the same ids.
func ReportID(source, eventID string, index int) string {
	return uuid.NewSHA1(idNamespace, []byte(source+"\n"+eventID+"\n"+strconv.Itoa(index))).String()
}

// ValidatedEventID derives the id of the clima.weather.validated event that
// answers the event identified by source and eventID.
func ValidatedEventID(source, eventID string) string {
	return uuid.NewSHA1(idNamespace, []byte("validated\n"+source+"\n"+eventID)).String()
}

// Accept gives normalised reports their ids and acceptance time.
func Accept(reports []Report, source, eventID string, now time.Time) {
	for i := range reports {
		reports[i].ID = ReportID(source, eventID, i)
		reports[i].AcceptedAt = now
	}
}

// ChunkReports is how many reports one clima.weather.validated event from
// the legacy endpoint carries at most: a 10,000-report request becomes ten
// events of about 160 kB, well under Kafka's default 1 MB message limit.
const ChunkReports = 1000

// NewValidatedChunks builds the validated events of a request too large for
// one event: chunk i carries reports [i·ChunkReports, (i+1)·ChunkReports)
// and its id derives from the request's too. One chunk is NewValidated's event.
func NewValidatedChunks(source, eventID string, reports []Report, now time.Time) ([]*event.Event, error) {
	if len(reports) <= ChunkReports {
		e, err := NewValidated(source, eventID, reports, now)
		return []*event.Event{e}, err
	}
	var chunks []*event.Event
	for start := 0; start < len(reports); start += ChunkReports {
		e, err := NewValidated(source, eventID+"#"+strconv.Itoa(start/ChunkReports), reports[start:min(start+ChunkReports, len(reports))], now)
		if err != nil {
			return nil, err
		}
		chunks = append(chunks, e)
	}
	return chunks, nil
}

// NewValidated builds the clima.weather.validated event that carries the
// accepted reports of the event identified by source and eventID.
func NewValidated(source, eventID string, reports []Report, now time.Time) (*event.Event, error) {
	e := event.New()
	e.SetID(ValidatedEventID(source, eventID))
	e.SetSource(SourceIngest)
	e.SetType(TypeValidated)
	e.SetTime(now)
	if err := e.SetData(event.ApplicationJSON, reports); err != nil {
		return nil, fmt.Errorf("encoding validated reports: %w", err)
	}
	return &e, nil
}

// IsJSON reports whether a content type is JSON (application/json or any
// +json type), or unset, which the CloudEvents spec reads as JSON.
func IsJSON(contentType string) bool {
	if contentType == "" {
		return true
	}
	mediaType, _, err := mime.ParseMediaType(contentType)
	return err == nil && (mediaType == event.ApplicationJSON || mediaType == "text/json" || strings.HasSuffix(mediaType, "+json"))
}
