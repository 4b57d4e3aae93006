package writer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/clima-dev/clima/events"
	"github.com/clima-dev/clima/events/writerpb"
)

// Server serves a Writer as the gRPC Writer service.
type Server struct {
	writerpb.UnimplementedWriterServer
	w       Writer
	timeout time.Duration
	log     *slog.Logger
	metrics *metrics
}

// NewServer serves w, a writer to broker ("kafka", "rabbitmq"), bounding
// each publish by timeout so that a broker that is down answers UNAVAILABLE
// in time for the caller to retry.
func NewServer(w Writer, broker string, timeout time.Duration, log *slog.Logger) *Server {
	return &Server{w: w, timeout: timeout, log: log, metrics: newMetrics(broker)}
}

// Publish validates the reports and publishes them: INVALID_ARGUMENT for bad
// reports, UNAVAILABLE when the broker did not take them all.
func (s *Server) Publish(ctx context.Context, req *writerpb.PublishRequest) (*writerpb.PublishReply, error) {
	start := time.Now()
	reports, err := events.FromProto(req.GetReports())
	if err != nil {
		s.log.Info("publish refused", "reports", len(req.GetReports()), "error", err)
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	err = s.w.Publish(ctx, reports)
	s.metrics.published(ctx, len(reports), start, err)
	if err != nil {
		s.log.Warn("publish failed", "reports", len(reports), "first_id", reports[0].ID, "error", err, "took", time.Since(start))
		return nil, status.Error(codes.Unavailable, err.Error())
	}
	s.log.Debug("published", "reports", len(reports), "first_id", reports[0].ID, "took", time.Since(start))
	return &writerpb.PublishReply{Published: int32(len(reports))}, nil
}

// Client is a Writer that calls a remote Writer service over gRPC.
type Client struct {
	conn *grpc.ClientConn
	rpc  writerpb.WriterClient
	addr string
}

// Dial returns a client of the Writer service at addr (host:port, plaintext
// h2c as Knative serves it inside the cluster). It connects lazily.
func Dial(addr string) (*Client, error) {
	conn, err := grpc.NewClient(addr,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallSendMsgSize(events.MaxMessageBytes)),
	)
	if err != nil {
		return nil, fmt.Errorf("dialing writer %s: %w", addr, err)
	}
	return &Client{conn: conn, rpc: writerpb.NewWriterClient(conn), addr: addr}, nil
}

// Publish calls the remote writer; its UNAVAILABLE, a lost connection or a
// deadline wraps ErrUnavailable, as any failure of the remote broker does.
func (c *Client) Publish(ctx context.Context, reports []events.Report) error {
	_, err := c.rpc.Publish(ctx, &writerpb.PublishRequest{Reports: events.ToProto(reports)})
	if err != nil {
		if status.Code(err) == codes.InvalidArgument {
			return fmt.Errorf("writer %s refused the reports: %w", c.addr, err)
		}
		return unavailable("calling writer "+c.addr, err)
	}
	return nil
}

// Ping is a no-op: the remote writer answers for its broker in its own
// readiness, and a client must not make its caller unready when a writer
// scaled to zero.
func (c *Client) Ping(context.Context) error { return nil }

// Close closes the connection.
func (c *Client) Close() error {
	if err := c.conn.Close(); err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("closing writer client %s: %w", c.addr, err)
	}
	return nil
}
