package bench

import (
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"

	"github.com/pipelines-service/pipelines-service/pkg/metrics"
)

func TestMedianRunIsTraced(t *testing.T) {
	base := time.Now()
	created := map[types.UID]time.Time{"a": base, "b": base, "c": base, "d": base}
	pods := map[types.UID]time.Duration{"a": 3 * time.Second, "b": time.Second, "c": 2 * time.Second}
	firstPod := func(uid types.UID) (time.Time, bool) {
		d, ok := pods[uid]
		return base.Add(d), ok
	}
	names := map[types.UID]string{"a": "bench-a", "b": "bench-b", "c": "bench-c", "d": "bench-d"}
	got := medianRun(created, firstPod, names)
	if got == nil || got.name != "bench-c" {
		t.Fatalf("median run = %+v, want bench-c (2 s of 1, 2, 3 s; d has no pod)", got)
	}
	if medianRun(map[types.UID]time.Time{"d": base}, firstPod, names) != nil {
		t.Error("a median of runs without pods")
	}
}

func TestTraceKeepsTheRunsSteps(t *testing.T) {
	base := time.Now()
	at := func(ms int) time.Time { return base.Add(time.Duration(ms) * time.Millisecond) }
	run := tracedRun{name: "bench-x", created: base, firstPod: at(900)}
	spans := []metrics.Span{
		{Start: at(-1500), Seconds: 0.01, Controller: "PipelineRun", Key: "ws|default/bench-x"},                                                                         // before creation
		{Start: at(10), Seconds: 0.3, Controller: "PipelineRun", Key: "ws|default/bench-x", Server: "kcp", Verb: "POST", Resource: "taskruns", Code: "201"},             // kept
		{Start: at(5), Seconds: 1.5, Controller: "PipelineRun", Key: "ws|default/bench-x"},                                                                              // kept, sorted first; under way at the pod
		{Start: at(1200), Seconds: 0.2, Controller: "PipelineRun", Key: "ws|default/bench-x", Server: "kcp", Verb: "PUT", Resource: "pipelineruns/status", Code: "200"}, // kept: its reconcile was under way
		{Start: at(400), Seconds: 0.05, Controller: "TaskRun", Key: "ws|default/bench-x-task-1", Server: "workload/w1", Verb: "POST", Resource: "pods", Code: "201"},    // kept
		{Start: at(20), Seconds: 0.1, Controller: "TaskRun", Key: "ws|default/bench-xy-task-1"},                                                                         // another run
		{Start: at(30), Seconds: 0.1, Server: "kcp", Verb: "POST", Resource: "events", Code: "201"},                                                                     // no reconcile
		{Start: at(1600), Seconds: 0.1, Controller: "TaskRun", Key: "ws|default/bench-x-task-2"},                                                                        // after the pod and that reconcile
	}
	tr := traceOf(run, spans)
	if tr.FirstPodSeconds != 0.9 {
		t.Errorf("first pod = %v s, want 0.9", tr.FirstPodSeconds)
	}
	want := []TraceStep{
		{AtSeconds: 0.005, Seconds: 1.5, Object: "pipelinerun bench-x", What: "reconcile"},
		{AtSeconds: 0.010, Seconds: 0.3, Object: "pipelinerun bench-x", What: "kcp POST taskruns 201"},
		{AtSeconds: 0.400, Seconds: 0.05, Object: "taskrun bench-x-task-1", What: "workload/w1 POST pods 201"},
		{AtSeconds: 1.200, Seconds: 0.2, Object: "pipelinerun bench-x", What: "kcp PUT pipelineruns/status 200"},
	}
	if len(tr.Steps) != len(want) {
		t.Fatalf("steps = %+v, want %+v", tr.Steps, want)
	}
	for i, w := range want {
		g := tr.Steps[i]
		if g.Object != w.Object || g.What != w.What || g.Seconds != w.Seconds || int(g.AtSeconds*1000+0.5) != int(w.AtSeconds*1000+0.5) {
			t.Errorf("step %d = %+v, want %+v", i, g, w)
		}
	}
}
