package bench

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"

	v1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	tektonclient "github.com/tektoncd/pipeline/pkg/client/clientset/versioned"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/pipelines-service/pipelines-service/pkg/devstack"
)

// GatewayResult is what the gateway costs a tenant: the time it adds to a
// request kcp answers, and how late a followed step's output arrives.
type GatewayResult struct {
	Requests      int     `json:"requests"`
	KCPP50MS      float64 `json:"kcpP50MS"`
	GatewayP50MS  float64 `json:"gatewayP50MS"`
	OverheadP50MS float64 `json:"overheadP50MS"`
	KCPP99MS      float64 `json:"kcpP99MS"`
	GatewayP99MS  float64 `json:"gatewayP99MS"`
	// Lines of a step that a `tkn taskrun logs -f` received, and how long
	// after the runtime stamped each (when the step wrote it) tkn printed it.
	LogLines    int     `json:"logLines"`
	LogLagP50MS float64 `json:"logLagP50MS"`
	LogLagMaxMS float64 `json:"logLagMaxMS"`
}

// measureGateway times the same request, as the demo tenant, straight to
// kcp and through the gateway (alternating, after a warm-up), then follows
// a step's output with tkn.
func (r *runner) measureGateway(ctx context.Context, requests int) (GatewayResult, error) {
	tenant := r.cfg.TenantKubeconfig(devstack.DemoTenant)
	through, err := clientcmd.BuildConfigFromFlags("", tenant)
	if err != nil {
		return GatewayResult{}, err
	}
	direct, err := r.directToKCP(through)
	if err != nil {
		return GatewayResult{}, err
	}
	var kcpTimes, gatewayTimes []time.Duration
	for i := 0; i < requests+20; i++ {
		for _, c := range []struct {
			rc    *rest.Config
			times *[]time.Duration
		}{{direct, &kcpTimes}, {through, &gatewayTimes}} {
			d, err := timeRequest(ctx, c.rc)
			if err != nil {
				return GatewayResult{}, fmt.Errorf("%s: %w", c.rc.Host, err)
			}
			if i >= 20 {
				*c.times = append(*c.times, d)
			}
		}
	}
	kcpMS, gatewayMS := millis(kcpTimes), millis(gatewayTimes)
	res := GatewayResult{Requests: requests,
		KCPP50MS: percentile(kcpMS, 50), GatewayP50MS: percentile(gatewayMS, 50),
		KCPP99MS: percentile(kcpMS, 99), GatewayP99MS: percentile(gatewayMS, 99)}
	res.OverheadP50MS = res.GatewayP50MS - res.KCPP50MS
	lags, err := r.followLag(ctx, through, tenant)
	if err != nil {
		return res, fmt.Errorf("log follow: %w", err)
	}
	res.LogLines = len(lags)
	res.LogLagP50MS, res.LogLagMaxMS = percentile(millis(lags), 50), percentile(millis(lags), 100)
	return res, nil
}

// directToKCP is the tenant's own identity (its client certificate),
// addressed to kcp instead of the gateway.
func (r *runner) directToKCP(through *rest.Config) (*rest.Config, error) {
	kcp, err := r.cfg.KCPBaseRestConfig()
	if err != nil {
		return nil, err
	}
	direct := rest.CopyConfig(through)
	direct.Host = kcp.Host + "/clusters/root:" + devstack.DemoTenant
	direct.CAData, direct.CAFile = kcp.CAData, kcp.CAFile
	direct.ServerName = kcp.ServerName
	return direct, nil
}

// timeRequest times one small list of TaskRuns.
func timeRequest(ctx context.Context, rc *rest.Config) (time.Duration, error) {
	client, err := tektonclient.NewForConfig(rc)
	if err != nil {
		return 0, err
	}
	start := time.Now()
	_, err = client.TektonV1().TaskRuns("default").List(ctx, metav1.ListOptions{Limit: 1})
	return time.Since(start), err
}

// followLag runs a step that prints a line every half second and follows
// it with `tkn taskrun logs -f --timestamps`: each line's lag is when tkn
// printed it minus the runtime's timestamp on it.
func (r *runner) followLag(ctx context.Context, rc *rest.Config, kubeconfig string) ([]time.Duration, error) {
	client, err := tektonclient.NewForConfig(rc)
	if err != nil {
		return nil, err
	}
	tr := &v1.TaskRun{ObjectMeta: metav1.ObjectMeta{GenerateName: "bench-follow-"}, Spec: v1.TaskRunSpec{TaskSpec: &v1.TaskSpec{Steps: []v1.Step{{
		Name: "tick", Image: "docker.io/library/busybox:1.36",
		Script: "#!/bin/sh\nfor i in $(seq 1 30); do echo tick-$i; sleep 0.5; done\n",
	}}}}}
	tr, err = client.TektonV1().TaskRuns("default").Create(ctx, tr, metav1.CreateOptions{})
	if err != nil {
		return nil, err
	}
	defer func() {
		_ = client.TektonV1().TaskRuns("default").Delete(context.Background(), tr.Name, metav1.DeleteOptions{})
	}()
	if err := waitRunning(ctx, rc, tr.Name); err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, r.cfg.TknBinary(), "taskrun", "logs", "-f", "--timestamps", tr.Name, "-n", "default")
	cmd.Env = append(os.Environ(), "KUBECONFIG="+kubeconfig)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	var lags []time.Duration
	lines := bufio.NewScanner(stdout)
	for lines.Scan() {
		received := time.Now()
		for _, field := range strings.Fields(lines.Text()) {
			if stamp, err := time.Parse(time.RFC3339Nano, field); err == nil && strings.Contains(lines.Text(), "tick-") {
				lags = append(lags, received.Sub(stamp))
				break
			}
		}
	}
	if err := cmd.Wait(); err != nil {
		return nil, fmt.Errorf("tkn taskrun logs -f: %w", err)
	}
	// The first lines were written before the follow began: only lines
	// written while it ran say how live it is.
	if len(lags) > 20 {
		lags = lags[len(lags)-20:]
	}
	if len(lags) == 0 {
		return nil, fmt.Errorf("tkn printed no timestamped line")
	}
	return lags, nil
}

func waitRunning(ctx context.Context, rc *rest.Config, name string) error {
	client, err := tektonclient.NewForConfig(rc)
	if err != nil {
		return err
	}
	kube, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return err
	}
	return wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 3*time.Minute, true, func(ctx context.Context) (bool, error) {
		tr, err := client.TektonV1().TaskRuns("default").Get(ctx, name, metav1.GetOptions{})
		if err != nil || tr.Status.PodName == "" {
			return false, nil
		}
		pod, err := kube.CoreV1().Pods("default").Get(ctx, tr.Status.PodName, metav1.GetOptions{})
		return err == nil && pod.Status.Phase == "Running", nil
	})
}

// millis is each duration in milliseconds.
func millis(ds []time.Duration) []float64 {
	out := make([]float64, len(ds))
	for i, d := range ds {
		out[i] = float64(d.Microseconds()) / 1000
	}
	return out
}
