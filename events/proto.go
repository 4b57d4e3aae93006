package events

import (
	"time"

	"github.com/clima-dev/clima/events/writerpb"
)

// ToProto converts reports into the gRPC Writer messages.
func ToProto(reports []Report) []*writerpb.Report {
	out := make([]*writerpb.Report, len(reports))
	for i, r := range reports {
		out[i] = &writerpb.Report{
			Id:                 r.ID,
			Description:        r.Description,
			Country:            r.Country,
			Weather:            string(r.Weather),
			AcceptedAtUnixNano: r.AcceptedAt.UnixNano(),
		}
	}
	return out
}

// FromProto converts gRPC Writer messages back into reports and validates
// them; the error is an *InvalidError.
func FromProto(msgs []*writerpb.Report) ([]Report, error) {
	if len(msgs) == 0 {
		return nil, invalid("the request holds no reports")
	}
	if len(msgs) > MaxReports {
		return nil, invalid("too many reports: at most %d in one request", MaxReports)
	}
	reports := make([]Report, len(msgs))
	var problems []Problem
	for i, m := range msgs {
		reports[i] = Report{
			ID:          m.GetId(),
			Description: m.GetDescription(),
			Country:     m.GetCountry(),
			Weather:     Weather(m.GetWeather()),
			AcceptedAt:  time.Unix(0, m.GetAcceptedAtUnixNano()).UTC(),
		}
		if m.GetAcceptedAtUnixNano() == 0 {
			reports[i].AcceptedAt = time.Time{}
		}
		problems = append(problems, reports[i].Validate(i)...)
	}
	if len(problems) > 0 {
		return nil, problemsError(len(msgs), problems)
	}
	return reports, nil
}
