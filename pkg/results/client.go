package results

import (
	"fmt"

	pb "github.com/tektoncd/results/proto/v1alpha2/results_go_proto"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// Clients are the Results API's gRPC services the recorder uses.
type Clients struct {
	Results pb.ResultsClient
	Logs    pb.LogsClient
	conn    *grpc.ClientConn
}

// Dial connects to the Results API at addr (host:port). The connection
// is plain HTTP/2: the API listens on the platform's host only, where no
// tenant reaches it (see pkg/devstack/results.go).
func Dial(addr string) (*Clients, error) {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, fmt.Errorf("results API %s: %w", addr, err)
	}
	return &Clients{Results: pb.NewResultsClient(conn), Logs: pb.NewLogsClient(conn), conn: conn}, nil
}

// Close closes the connection.
func (c *Clients) Close() error { return c.conn.Close() }
