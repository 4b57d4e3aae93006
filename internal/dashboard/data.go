package dashboard

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// Datasources are what a panel's targets run against, by datasource uid.
type Datasources struct {
	Stores     map[string]*redis.Client
	Prometheus map[string]PromSource
	// Window is the time range Prometheus targets show, up to now.
	Window time.Duration
}

// Frames runs a panel's queries against the datasources, as the
// redis-datasource plugin and Grafana's Prometheus datasource run them,
// and applies the panel's transformations: the data Grafana's panel would
// draw.
func (p Panel) Frames(ctx context.Context, ds Datasources) ([]Frame, error) {
	frames, err := p.query(ctx, ds)
	if err != nil {
		return nil, err
	}
	return p.transform(frames)
}

// queryTimeout bounds one target's query.
const queryTimeout = 5 * time.Second

// query runs the targets; hidden ones only feed expressions.
func (p Panel) query(ctx context.Context, ds Datasources) ([]Frame, error) {
	stores := ds.Stores
	numbers := map[string]float64{}
	var frames []Frame
	for _, t := range p.Targets {
		var f Frame
		if t.Prom != nil {
			src, ok := ds.Prometheus[t.Prom.UID]
			if !ok {
				return nil, fmt.Errorf("datasource %s is not provisioned", t.Prom.UID)
			}
			qctx, cancel := context.WithTimeout(ctx, queryTimeout)
			series, err := t.Prom.run(qctx, src, ds.Window, time.Now())
			cancel()
			if err != nil {
				return nil, fmt.Errorf("%s: %w", t.RefID, err)
			}
			for _, s := range series {
				s.RefID = t.RefID
				if !t.Hide {
					frames = append(frames, s)
				}
			}
			continue
		}
		if t.Redis != nil {
			rdb, ok := stores[t.Redis.Datasource.UID]
			if !ok {
				return nil, fmt.Errorf("datasource %s is not provisioned", t.Redis.Datasource.UID)
			}
			qctx, cancel := context.WithTimeout(ctx, queryTimeout)
			var err error
			f, err = t.Redis.run(qctx, rdb)
			cancel()
			if err != nil {
				return nil, fmt.Errorf("%s: %w", t.RefID, err)
			}
			if t.Redis.Streaming {
				f = streamingFrame(*t.Redis, f, float64(time.Now().UnixMilli()))
			}
		} else {
			e, err := parseMath(t.Math)
			if err != nil {
				return nil, err
			}
			n, err := e(numbers)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", t.RefID, err)
			}
			f = Frame{Name: t.RefID, Fields: []Field{numberField(t.RefID, n)}}
		}
		f.RefID = t.RefID
		// A frame of one number is a number to expressions (Grafana's SSE).
		if f.Len() == 1 && len(f.Fields) == 1 && f.Fields[0].Type == TypeNumber {
			if n, ok := f.Fields[0].Values[0].(float64); ok {
				numbers[t.RefID] = n
			}
		}
		if !t.Hide {
			frames = append(frames, f)
		}
	}
	return frames, nil
}

func (p Panel) transform(frames []Frame) ([]Frame, error) {
	for _, tr := range p.Transformations {
		if tr.Disabled != nil && *tr.Disabled {
			continue
		}
		var err error
		if frames, err = transformers[tr.Id](tr.Options, frames); err != nil {
			return nil, err
		}
	}
	return frames, nil
}
