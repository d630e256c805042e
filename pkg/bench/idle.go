package bench

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kcp-dev/logicalcluster/v3"
	tektonclient "github.com/tektoncd/pipeline/pkg/client/clientset/versioned"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/pipelines-service/pipelines-service/pkg/devstack"
	"github.com/pipelines-service/pipelines-service/pkg/kcp"
	"github.com/pipelines-service/pipelines-service/pkg/provider"
)

// IdleResult are the figures of many bound tenant workspaces without runs.
type IdleResult struct {
	Workspaces       int     `json:"workspaces"`
	SetupSeconds     float64 `json:"setupSeconds"`
	StartupSeconds   float64 `json:"controllerStartupSeconds"`
	ControllerRSSMiB float64 `json:"controllerRSSMiB"`
	// KCPRSSMiB and KCPEtcdRSSMiB are the root shard's (the figures of
	// the one kcp the stack had before it was sharded).
	KCPRSSMiB     float64 `json:"kcpRSSMiB"`
	KCPEtcdRSSMiB float64 `json:"kcpEtcdRSSMiB"`
	// Shards are each kcp shard's figures.
	Shards []ShardFigures `json:"shards"`
	// FrontProxyRSSMiB is kcp-front-proxy's memory.
	FrontProxyRSSMiB   float64 `json:"frontProxyRSSMiB"`
	RunFirstPodSeconds float64 `json:"runFirstPodSeconds"`
	RunDoneSeconds     float64 `json:"runDoneSeconds"`
	CleanupSeconds     float64 `json:"cleanupSeconds,omitempty"`
}

// ShardFigures are one kcp shard's figures at the idle point.
type ShardFigures struct {
	Shard string `json:"shard"`
	// Workspaces are the idle workspaces the shard holds (counted on the
	// shard).
	Workspaces int     `json:"workspaces"`
	KCPRSSMiB  float64 `json:"kcpRSSMiB"`
	EtcdRSSMiB float64 `json:"etcdRSSMiB"`
}

const idleWorkspacePrefix = "bench-idle-"

func idleWorkspace(i int) string { return fmt.Sprintf("%s%04d", idleWorkspacePrefix, i) }

// idleScale binds n tenant workspaces (reusing those that exist, where
// they are), the i-th new one on shards[i % len(shards)], restarts the
// controller and times its start-up, then one PipelineRun in the last
// workspace. Unless keep, the workspaces are deleted afterwards.
func (r *runner) idleScale(ctx context.Context, n int, shards []string, keep bool) (IdleResult, error) {
	res := IdleResult{Workspaces: n}
	clients, err := r.stack.ProviderClients()
	if err != nil {
		return res, err
	}
	start := time.Now()
	if err := r.forEach(ctx, "idle workspaces bound", n, 16, func(i int) error {
		path, err := devstack.EnsureWorkspaceOn(ctx, clients.KCP, logicalcluster.NewPath("root"), idleWorkspace(i), shards[i%len(shards)])
		if err != nil {
			return err
		}
		return provider.BindTenant(ctx, clients, path, devstack.ProviderPath(), "bench-idle")
	}); err != nil {
		return res, err
	}
	res.SetupSeconds = time.Since(start).Seconds()
	r.log.Infow("idle workspaces bound", "workspaces", n, "seconds", fmt.Sprintf("%.0f", res.SetupSeconds))

	pid, startup, err := r.stack.RestartController(ctx)
	if err != nil {
		return res, err
	}
	res.StartupSeconds = startup.Seconds()
	res.ControllerRSSMiB = procStatusMiB(pid, "VmRSS")
	res.KCPRSSMiB = float64(r.stack.KCPRSSBytes()) / (1 << 20)
	res.KCPEtcdRSSMiB = float64(r.stack.KCPEtcdRSSBytes()) / (1 << 20)
	res.FrontProxyRSSMiB = float64(r.stack.FrontProxyRSSBytes()) / (1 << 20)
	held, err := r.cfg.ShardWorkspaces(ctx, logicalcluster.NewPath("root").Join(idleWorkspacePrefix).String())
	if err != nil {
		return res, err
	}
	for _, shard := range devstack.Shards() {
		res.Shards = append(res.Shards, ShardFigures{Shard: shard, Workspaces: held[shard],
			KCPRSSMiB:  float64(r.stack.ShardRSSBytes(shard)) / (1 << 20),
			EtcdRSSMiB: float64(r.stack.ShardEtcdRSSBytes(shard)) / (1 << 20)})
	}

	// The last workspace may be on any shard: through the front-proxy.
	rc, err := r.cfg.KCPProxyBaseRestConfig()
	if err != nil {
		return res, err
	}
	last := logicalcluster.Name(logicalcluster.NewPath("root").Join(idleWorkspace(n - 1)).String())
	client, err := tektonclient.NewForConfig(kcp.ForCluster(rc, last))
	if err != nil {
		return res, err
	}
	firstPod, stopWatch, err := r.watchFirstPods(ctx)
	if err != nil {
		return res, err
	}
	defer stopWatch()
	created := time.Now()
	pr, err := client.TektonV1().PipelineRuns("default").Create(ctx, benchPipelineRun("idle-probe-", 1), metav1.CreateOptions{})
	if err != nil {
		return res, fmt.Errorf("create PipelineRun in %s: %w", last, err)
	}
	for deadline := time.Now().Add(5 * time.Minute); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		got, err := client.TektonV1().PipelineRuns("default").Get(ctx, pr.Name, metav1.GetOptions{})
		if err != nil {
			return res, err
		}
		if got.IsDone() {
			res.RunDoneSeconds = time.Since(created).Seconds()
			break
		}
	}
	if seen, ok := firstPod(pr.UID); ok {
		res.RunFirstPodSeconds = seen.Sub(created).Seconds()
	}
	if res.RunDoneSeconds == 0 {
		return res, fmt.Errorf("PipelineRun in %s did not finish within 5m", last)
	}
	if keep {
		return res, nil
	}
	start = time.Now()
	err = r.forEach(ctx, "idle workspaces deleted", n, 16, func(i int) error {
		err := clients.KCP.Cluster(logicalcluster.NewPath("root")).TenancyV1alpha1().Workspaces().Delete(ctx, idleWorkspace(i), metav1.DeleteOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		return err
	})
	res.CleanupSeconds = time.Since(start).Seconds()
	return res, err
}

// forEach runs fn for 0..n-1 on workers goroutines; the first error wins.
// Every 30 s it logs how many of the n (what) are done, as binding
// hundreds of workspaces takes minutes.
func (r *runner) forEach(ctx context.Context, what string, n, workers int, fn func(i int) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	next := make(chan int)
	var once sync.Once
	var first error
	var done atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if err := fn(i); err != nil {
					once.Do(func() { first = err; cancel() })
				}
				done.Add(1)
			}
		}()
	}
	go func() {
		tick := time.NewTicker(30 * time.Second)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				r.log.Infow("bench: still working", "what", what, "done", done.Load(), "of", n)
			}
		}
	}()
	for i := 0; i < n && ctx.Err() == nil; i++ {
		next <- i
	}
	close(next)
	wg.Wait()
	return first
}
