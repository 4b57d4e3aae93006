// Command kafka-consumer stores the reports that the KafkaSource delivers
// into its store, exactly once, answering 2xx only once they are stored.
package main

import (
	"github.com/clima-dev/clima/internal/fnruntime"
	"github.com/clima-dev/clima/internal/wire"
)

func main() { fnruntime.Main(wire.Consumer("kafka")) }
