// Command publisher fans a clima.weather.validated event out to both
// writers over gRPC at once, and fails the event with a retryable status
// when either of them did not durably publish it.
package main

import "github.com/clima-dev/clima/internal/serving"

func main() { serving.Main(build) }
