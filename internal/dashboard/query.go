package dashboard

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

// DatasourceType is the redis-datasource plugin's type id.
const DatasourceType = "redis-datasource"

// RedisQuery is a panel target of the redis-datasource plugin: the fields
// of its query model (pkg/types.go, queryModel) that clima's dashboard
// uses, and the frontend's streaming settings (src/redis/types.ts). The
// plugin is not a Go module that can be imported, so the model is written
// here; decoding refuses a field it does not list, so a misspelt one is
// caught here instead of doing nothing in Grafana.
type RedisQuery struct {
	RefID      string `json:"refId"`
	Datasource struct {
		Type string `json:"type"`
		UID  string `json:"uid"`
	} `json:"datasource"`
	Hide    bool   `json:"hide,omitempty"`
	Type    string `json:"type"`
	Command string `json:"command"`
	Key     string `json:"keyName,omitempty"`
	Field   string `json:"field,omitempty"`
	Section string `json:"section,omitempty"`
	Start   string `json:"start,omitempty"`
	End     string `json:"end,omitempty"`
	Count   int    `json:"count,omitempty"`
	// Streaming makes the frontend run the query every StreamingInterval
	// ms and keep the last StreamingCapacity points, stamped on arrival.
	Streaming         bool `json:"streaming,omitempty"`
	StreamingInterval int  `json:"streamingInterval,omitempty"`
	StreamingCapacity int  `json:"streamingCapacity,omitempty"`
}

// Commands the local view runs as the plugin does.
var supportedCommands = map[string]bool{"get": true, "hgetall": true, "xrevrange": true, "info": true}

func decodeRedisQuery(raw map[string]any) (RedisQuery, error) {
	var q RedisQuery
	data, err := json.Marshal(raw)
	if err != nil {
		return q, err
	}
	if err := strictJSON(data, &q); err != nil {
		return q, fmt.Errorf("target %v: %w", raw["refId"], err)
	}
	return q, nil
}

// unsupported says why the local view cannot run q, or "" when it can.
func (q RedisQuery) unsupported() string {
	switch {
	case q.Type != "command":
		return fmt.Sprintf("query type %q (only \"command\" runs locally)", q.Type)
	case !supportedCommands[q.Command]:
		return fmt.Sprintf("command %q (get, hgetall, xrevrange and info run locally)", q.Command)
	}
	return ""
}

// run runs q against a store and returns the frame the plugin's backend
// would return.
func (q RedisQuery) run(ctx context.Context, rdb *redis.Client) (Frame, error) {
	switch q.Command {
	case "get":
		// The plugin reads a missing key as "" (a string field).
		v, err := rdb.Get(ctx, q.Key).Result()
		if err != nil && !errors.Is(err, redis.Nil) {
			return Frame{}, err
		}
		return Frame{Name: q.Key, Fields: []Field{valueField("Value", v)}}, nil
	case "hgetall":
		return q.hgetall(ctx, rdb)
	case "xrevrange":
		return q.xrevrange(ctx, rdb)
	case "info":
		text, err := rdb.Info(ctx, q.Section).Result()
		if err != nil {
			return Frame{}, err
		}
		return infoFrame(q.Command, text), nil
	}
	return Frame{}, fmt.Errorf("command %q is not supported locally", q.Command)
}

// hgetall is pkg/redis-hash.go: a frame named after the key with two
// string fields, Field and Value, in the order the server answers.
func (q RedisQuery) hgetall(ctx context.Context, rdb *redis.Client) (Frame, error) {
	// go-redis answers HGETALL as a map; the raw reply keeps the order.
	reply, err := rdb.Do(ctx, "hgetall", q.Key).Slice()
	if err != nil && !errors.Is(err, redis.Nil) {
		return Frame{}, err
	}
	var fields, values []string
	for i := 0; i+1 < len(reply); i += 2 {
		fields = append(fields, fmt.Sprint(reply[i]))
		values = append(values, fmt.Sprint(reply[i+1]))
	}
	return Frame{Name: q.Key, Fields: []Field{stringField("Field", fields), stringField("Value", values)}}, nil
}

// xrevrange is pkg/redis-stream.go: XREVRANGE key <end> <start>, with
// start defaulting to "-" and end to "+"; a frame named after the command
// with $streamId and one string field per entry key, in first-seen order.
func (q RedisQuery) xrevrange(ctx context.Context, rdb *redis.Client) (Frame, error) {
	start, end := q.Start, q.End
	if start == "" {
		start = "-"
	}
	if end == "" {
		end = "+"
	}
	args := []any{"xrevrange", q.Key, end, start}
	if q.Count > 0 {
		args = append(args, "count", q.Count)
	}
	// The raw reply keeps each entry's keys in the server's order.
	entries, err := rdb.Do(ctx, args...).Slice()
	if err != nil && !errors.Is(err, redis.Nil) {
		return Frame{}, err
	}
	frame := Frame{Name: q.Command, Fields: []Field{{Name: "$streamId", Type: TypeString, Values: []any{}}}}
	column := map[string]int{}
	for row, raw := range entries {
		entry, ok := raw.([]any)
		if !ok || len(entry) != 2 {
			return Frame{}, fmt.Errorf("xrevrange: unexpected entry %v", raw)
		}
		pairs, _ := entry[1].([]any)
		frame.Fields[0].Values = append(frame.Fields[0].Values, fmt.Sprint(entry[0]))
		for i := 0; i+1 < len(pairs); i += 2 {
			k := fmt.Sprint(pairs[i])
			c, ok := column[k]
			if !ok {
				c = len(frame.Fields)
				column[k] = c
				frame.Fields = append(frame.Fields, Field{Name: k, Type: TypeString, Values: make([]any, row)})
				for j := range row {
					frame.Fields[c].Values[j] = ""
				}
			}
			frame.Fields[c].Values = append(frame.Fields[c].Values, fmt.Sprint(pairs[i+1]))
		}
		// Keys this entry lacks get "", as in the plugin.
		for c := 1; c < len(frame.Fields); c++ {
			if len(frame.Fields[c].Values) == row {
				frame.Fields[c].Values = append(frame.Fields[c].Values, "")
			}
		}
	}
	return frame, nil
}

// infoFrame is the plugin's generic INFO parser (pkg/info-sections.go,
// infoGenericFrame): one row, one field per key, float64 when the value
// parses as a number. The record-shaped sections (commandstats, keyspace,
// …) have parsers of their own there and are not used by the dashboard.
func infoFrame(name, text string) Frame {
	frame := Frame{Name: name}
	for _, line := range strings.Split(strings.ReplaceAll(text, "\r\n", "\n"), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		key, value, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		frame.Fields = append(frame.Fields, valueField(key, value))
	}
	return frame
}

// streamingFrame is what the plugin's frontend keeps of one streaming
// reply (src/redis/time-series.ts): the filter field, if any, and the
// arrival time, as one point of a time series.
func streamingFrame(q RedisQuery, f Frame, nowMs float64) Frame {
	out := Frame{Name: f.Name, RefID: q.RefID}
	for _, field := range f.Fields {
		if q.Field != "" && field.Name != q.Field || len(field.Values) == 0 {
			continue
		}
		if field.Type == TypeString {
			// A string that parses as a number becomes a number there too.
			if n, err := strconv.ParseFloat(fmt.Sprint(field.Values[len(field.Values)-1]), 64); err == nil {
				field = numberField(field.Name, n)
			}
		}
		if len(field.Values) > 1 {
			field.Values = field.Values[len(field.Values)-1:]
		}
		out.Fields = append(out.Fields, field)
	}
	out.Fields = append(out.Fields, Field{Name: "time", Type: TypeTime, Values: []any{nowMs}})
	return out
}
