package testenv

import (
	"fmt"
	"time"

	"github.com/clima-dev/clima/events"
)

// Countries are the countries test reports come from.
var Countries = []string{"GT", "MX", "SV", "HN", "NI", "CR", "PA", "ES"}

// Reports returns n valid, accepted reports with ids prefix-0 … prefix-(n-1),
// spread evenly over Countries and events.Weathers.
func Reports(prefix string, n int) []events.Report {
	now := time.Now().UTC()
	reports := make([]events.Report, n)
	for i := range reports {
		reports[i] = events.Report{
			ID:          fmt.Sprintf("%s-%d", prefix, i),
			Description: fmt.Sprintf("reporte %d de %s", i, prefix),
			Country:     Countries[i%len(Countries)],
			Weather:     events.Weathers[i%len(events.Weathers)],
			AcceptedAt:  now,
		}
	}
	return reports
}
