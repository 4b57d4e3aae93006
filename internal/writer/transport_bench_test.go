package writer_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/clima-dev/clima/events"
	"github.com/clima-dev/clima/events/writerpb"
	"github.com/clima-dev/clima/internal/fnruntime"
	"github.com/clima-dev/clima/internal/testenv"
	"github.com/clima-dev/clima/internal/writer"
)

// discard is a Writer that takes everything: the benchmarks below measure
// the call, not a broker.
type discard struct{}

func (discard) Publish(context.Context, []events.Report) error { return nil }
func (discard) Ping(context.Context) error                     { return nil }
func (discard) Close() error                                   { return nil }

// counted counts the bytes a listener's connections read and write.
type counted struct {
	net.Listener
	bytes atomic.Int64
}

func (l *counted) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &countedConn{Conn: c, n: &l.bytes}, nil
}

type countedConn struct {
	net.Conn
	n *atomic.Int64
}

func (c *countedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.n.Add(int64(n))
	return n, err
}

func (c *countedConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.n.Add(int64(n))
	return n, err
}

func listen(b *testing.B) *counted {
	b.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	return &counted{Listener: lis}
}

// BenchmarkWriterCall is the publisher → writer call with the same reports
// over gRPC (what clima uses: protobuf over HTTP/2) and over HTTP/1.1 with
// a JSON body, each server validating the reports and answering the count.
// wire-B/op counts the bytes both ways on the server's connection.
func BenchmarkWriterCall(b *testing.B) {
	for _, n := range []int{1, 1000} {
		reports := testenv.Reports("transport", n)
		b.Run(fmt.Sprintf("grpc/reports=%d", n), func(b *testing.B) {
			lis := listen(b)
			srv := grpc.NewServer(grpc.MaxRecvMsgSize(events.MaxMessageBytes))
			writerpb.RegisterWriterServer(srv, writer.NewServer(discard{}, "discard", 5*time.Second, fnruntime.NewLogger("bench")))
			go func() { _ = srv.Serve(lis) }()
			defer srv.Stop()
			client, err := writer.Dial(lis.Addr().String())
			if err != nil {
				b.Fatal(err)
			}
			defer client.Close()
			run(b, lis, func() error { return client.Publish(context.Background(), reports) })
		})
		b.Run(fmt.Sprintf("http-json/reports=%d", n), func(b *testing.B) {
			lis := listen(b)
			srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				body, err := io.ReadAll(r.Body)
				if err != nil {
					http.Error(w, err.Error(), http.StatusBadRequest)
					return
				}
				got, err := events.DecodeReports(body)
				if err == nil {
					err = discard{}.Publish(r.Context(), got)
				}
				if err != nil {
					http.Error(w, err.Error(), http.StatusBadRequest)
					return
				}
				w.Header().Set("Content-Type", "application/json")
				_ = json.NewEncoder(w).Encode(map[string]int{"published": len(got)})
			})}
			go func() { _ = srv.Serve(lis) }()
			defer srv.Close()
			url := "http://" + lis.Addr().String() + "/publish"
			client := &http.Client{}
			run(b, lis, func() error {
				body, err := json.Marshal(reports)
				if err != nil {
					return err
				}
				resp, err := client.Post(url, "application/json", bytes.NewReader(body))
				if err != nil {
					return err
				}
				defer resp.Body.Close()
				var reply struct{ Published int }
				if err := json.NewDecoder(resp.Body).Decode(&reply); err != nil || reply.Published != n {
					return fmt.Errorf("answered %d %+v (%v)", resp.StatusCode, reply, err)
				}
				return nil
			})
		})
	}
}

// run times call, after one warm-up call that opens the connection.
func run(b *testing.B, lis *counted, call func() error) {
	b.Helper()
	if err := call(); err != nil {
		b.Fatal(err)
	}
	lis.bytes.Store(0)
	b.ReportAllocs()
	for b.Loop() {
		if err := call(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(lis.bytes.Load())/float64(b.N), "wire-B/op")
}
