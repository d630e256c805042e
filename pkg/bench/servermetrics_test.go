package bench

import (
	"math"
	"strings"
	"testing"

	"github.com/pipelines-service/pipelines-service/pkg/metrics"
)

const metricsBefore = `# TYPE apiserver_request_duration_seconds histogram
apiserver_request_duration_seconds_bucket{verb="PUT",resource="taskruns",subresource="status",le="+Inf"} 2
apiserver_request_duration_seconds_sum{verb="PUT",resource="taskruns",subresource="status"} 1
apiserver_request_duration_seconds_count{verb="PUT",resource="taskruns",subresource="status"} 2
apiserver_request_duration_seconds_bucket{verb="WATCH",resource="taskruns",subresource="",le="+Inf"} 1
apiserver_request_duration_seconds_sum{verb="WATCH",resource="taskruns",subresource=""} 100
apiserver_request_duration_seconds_count{verb="WATCH",resource="taskruns",subresource=""} 1
# TYPE apiserver_delegated_authz_request_duration_seconds histogram
apiserver_delegated_authz_request_duration_seconds_bucket{code="201",le="+Inf"} 1
apiserver_delegated_authz_request_duration_seconds_sum{code="201"} 0.2
apiserver_delegated_authz_request_duration_seconds_count{code="201"} 1
`

const metricsAfter = `# TYPE apiserver_request_duration_seconds histogram
apiserver_request_duration_seconds_bucket{verb="PUT",resource="taskruns",subresource="status",le="+Inf"} 6
apiserver_request_duration_seconds_sum{verb="PUT",resource="taskruns",subresource="status"} 3
apiserver_request_duration_seconds_count{verb="PUT",resource="taskruns",subresource="status"} 6
apiserver_request_duration_seconds_bucket{verb="POST",resource="pods",subresource="",le="+Inf"} 1
apiserver_request_duration_seconds_sum{verb="POST",resource="pods",subresource=""} 0.05
apiserver_request_duration_seconds_count{verb="POST",resource="pods",subresource=""} 1
apiserver_request_duration_seconds_bucket{verb="WATCH",resource="taskruns",subresource="",le="+Inf"} 3
apiserver_request_duration_seconds_sum{verb="WATCH",resource="taskruns",subresource=""} 500
apiserver_request_duration_seconds_count{verb="WATCH",resource="taskruns",subresource=""} 3
# TYPE apiserver_delegated_authz_request_duration_seconds histogram
apiserver_delegated_authz_request_duration_seconds_bucket{code="201",le="+Inf"} 4
apiserver_delegated_authz_request_duration_seconds_sum{code="201"} 0.8
apiserver_delegated_authz_request_duration_seconds_count{code="201"} 4
`

func TestServerDelta(t *testing.T) {
	before, err := metrics.Parse(strings.NewReader(metricsBefore))
	if err != nil {
		t.Fatal(err)
	}
	after, err := metrics.Parse(strings.NewReader(metricsAfter))
	if err != nil {
		t.Fatal(err)
	}
	got := serverDelta("kcp", before, after)
	if len(got.Requests) != 2 {
		t.Fatalf("requests %+v, want PUT taskruns status and POST pods (no WATCH)", got.Requests)
	}
	put := got.Requests[0]
	if put.Name != "PUT taskruns status" || put.Count != 4 || math.Abs(put.MeanMS-500) > 0.001 {
		t.Errorf("first row %+v, want PUT taskruns status: 4 at 500 ms (the largest total first)", put)
	}
	if a := got.Authz; a.Count != 3 || math.Abs(a.MeanMS-200) > 0.001 {
		t.Errorf("authz %+v, want 3 at 200 ms", a)
	}
}
