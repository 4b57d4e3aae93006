// Package writer hands reports to the message brokers. Kafka and RabbitMQ are
// two implementations of one Writer contract; the gRPC Writer service of
// events/writerpb serves either, and Client calls it from the publisher.
package writer

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/clima-dev/clima/events"
)

// ErrUnavailable wraps every failure to get reports durably onto a broker.
var ErrUnavailable = errors.New("broker unavailable")

// Writer publishes reports to a broker, one message per country group (see
// countryGroups).
//
// Publish returns nil only after the broker has durably taken every report
// (Kafka: acks=all; RabbitMQ: a publisher confirm of a persistent message);
// any error wraps ErrUnavailable and means some reports may not have been
// taken, so the caller retries the whole batch and consumers drop the
// duplicates. The context bounds the whole call. Implementations are safe
// for concurrent use; Close waits for in-flight publishes and releases the
// connections.
type Writer interface {
	Publish(ctx context.Context, reports []events.Report) error
	// Ping checks that the broker answers and knows the destination.
	Ping(ctx context.Context) error
	Close() error
}

// ContentType is the content type of every message a writer publishes.
const ContentType = "application/json"

// MaxGroupBytes bounds one message's JSON, beside events.MaxGroupReports.
// Kafka's default message.max.bytes is 1,048,588 (and the Kafka writer's
// BatchBytes 1,000,000): it leaves room for the record's key, headers and
// batch framing.
const MaxGroupBytes = 900_000

// ReportCountHeader is the RabbitMQ message header that holds how many
// reports the message carries.
const ReportCountHeader = "clima-reports"

// group is one broker message: reports of one country, in the order they
// came, as a JSON array.
type group struct {
	country string
	body    []byte
	count   int
	first   events.Report
	// id is derived from the reports' ids: a republish of the same reports
	// has the same id.
	id string
}

// countryGroups splits reports into groups by country, countries in the
// order they first came and each country's reports in their order, a group
// closed when it would pass events.MaxGroupReports or MaxGroupBytes (a report
// larger than that alone is a group of its own).
func countryGroups(reports []events.Report) ([]group, error) {
	var countries []string
	byCountry := map[string][]events.Report{}
	for _, r := range reports {
		if _, ok := byCountry[r.Country]; !ok {
			countries = append(countries, r.Country)
		}
		byCountry[r.Country] = append(byCountry[r.Country], r)
	}
	var groups []group
	for _, country := range countries {
		var body []byte
		var ids []string
		var first events.Report
		closeGroup := func() {
			if len(ids) == 0 {
				return
			}
			sum := sha256.Sum256([]byte(strings.Join(ids, "\n")))
			groups = append(groups, group{country: country, body: append(body, ']'), count: len(ids), first: first,
				id: "g-" + hex.EncodeToString(sum[:16])})
			body, ids = nil, nil
		}
		for _, r := range byCountry[country] {
			encoded, err := json.Marshal(r)
			if err != nil {
				return nil, fmt.Errorf("encoding report %s: %w", r.ID, err)
			}
			if len(ids) == events.MaxGroupReports || (len(ids) > 0 && len(body)+1+len(encoded)+1 > MaxGroupBytes) {
				closeGroup()
			}
			if len(ids) == 0 {
				body, first = append(body, '['), r
			} else {
				body = append(body, ',')
			}
			body = append(body, encoded...)
			ids = append(ids, r.ID)
		}
		closeGroup()
	}
	return groups, nil
}

func unavailable(what string, err error) error {
	return fmt.Errorf("%w: %s: %w", ErrUnavailable, what, err)
}
