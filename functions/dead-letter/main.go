// Command dead-letter is the dead-letter sink of the Triggers and the
// KafkaSource: it records every event the platform could not deliver, with
// a counter, so that nothing is dropped silently.
package main

import "github.com/clima-dev/clima/internal/serving"

func main() { serving.Main(build) }
