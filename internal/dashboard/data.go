package dashboard

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// Frames runs a panel's queries against the stores (by datasource uid), as
// the redis-datasource plugin runs them, and applies the panel's
// transformations: the data Grafana's panel would draw.
func (p Panel) Frames(ctx context.Context, stores map[string]*redis.Client) ([]Frame, error) {
	frames, err := p.query(ctx, stores)
	if err != nil {
		return nil, err
	}
	return p.transform(frames)
}

// query runs the targets; hidden ones only feed expressions.
func (p Panel) query(ctx context.Context, stores map[string]*redis.Client) ([]Frame, error) {
	numbers := map[string]float64{}
	var frames []Frame
	for _, t := range p.Targets {
		var f Frame
		if t.Redis != nil {
			rdb, ok := stores[t.Redis.Datasource.UID]
			if !ok {
				return nil, fmt.Errorf("datasource %s is not provisioned", t.Redis.Datasource.UID)
			}
			qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
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
