// Command ingest validates weather reports: it answers the Broker's
// clima.weather.reported events with clima.weather.validated replies, and
// takes plain JSON from legacy clients at POST /input, sending the validated
// event to its sink (K_SINK, the Broker).
package main

import "github.com/clima-dev/clima/internal/serving"

func main() { serving.Main(build) }
