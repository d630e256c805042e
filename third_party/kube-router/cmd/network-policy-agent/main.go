// Command network-policy-agent is kube-router's network policy controller
// alone, wired as kube-router's own main wires it (pkg/cmd/kube-router.go),
// with two differences in how pod events become full syncs:
//   - a pod event asks for a sync only when it changes something the
//     controller's rules are made of (relevance.go);
//   - pod events ask for a sync no sooner than --pod-sync-interval after
//     the last one ended (limiter.go);
//
// one in how a sync reads the filter table: its checks of kube-router's
// own chains read one iptables-save per sync instead of running a dozen
// iptables commands (snapshot.go); and one in how it reads the apiserver:
// in protobuf, not JSON (client.go).
//
// Why: kube-router answers every pod event it finds relevant with a full
// sync of the node's filter table (iptables-save, ipset, iptables-restore).
// Its relevance test counts every phase change, so a Tekton pod (IP
// assigned, Pending to Running, Succeeded, deleted) costs every node four
// full syncs, although only two of them change a rule; and a burst of pods
// costs a sync per event. On a 2-core stack those syncs took more CPU than
// kcp during a benchmark run.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"sync"
	"syscall"

	"github.com/cloudnativelabs/kube-router/v2/pkg/cmd"
	"github.com/cloudnativelabs/kube-router/v2/pkg/controllers/netpol"
	"github.com/cloudnativelabs/kube-router/v2/pkg/healthcheck"
	"github.com/cloudnativelabs/kube-router/v2/pkg/metrics"
	"github.com/cloudnativelabs/kube-router/v2/pkg/options"
	"github.com/cloudnativelabs/kube-router/v2/pkg/utils"
	dto "github.com/prometheus/client_model/go"
	"github.com/spf13/pflag"
	"k8s.io/client-go/informers"
	"k8s.io/klog/v2"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func run() error {
	klog.InitFlags(nil)
	config := options.NewKubeRouterConfig()
	config.AddFlags(pflag.CommandLine)
	// Off unless asked for: batching is safe only on a node that fails
	// closed (see limiter.go).
	podSyncInterval := pflag.Duration("pod-sync-interval", 0,
		"for pod events, at least this much quiet between the end of a full sync and the start of the next; 0 passes each on, as kube-router does. "+
			"Only safe on a node that drops traffic from pods without a chain of their own.")
	pflag.Parse()
	if err := flag.Set("v", config.VLevel); err != nil {
		return err
	}
	// Only the network policy controller: no BGP router, no service proxy.
	config.RunFirewall, config.RunRouter, config.RunServiceProxy, config.RunLoadBalancer = true, false, false, false

	// The controller's metrics are on (no server serves them): the count
	// of its sync-time histogram is how the limiter sees a sync end.
	config.MetricsEnabled = true
	kr, err := cmd.NewKubeRouterDefault(config)
	if err != nil {
		return err
	}
	if kr.Client, err = protobufClient(config); err != nil {
		return err
	}
	stop := make(chan struct{})
	factory := informers.NewSharedInformerFactory(kr.Client, 0)
	pods := factory.Core().V1().Pods().Informer()
	namespaces := factory.Core().V1().Namespaces().Informer()
	policies := factory.Networking().V1().NetworkPolicies().Informer()
	factory.Start(stop)
	if err := kr.CacheSyncOrTimeout(factory, stop); err != nil {
		return err
	}

	iptables, ipsets, err := netpol.NewIPTablesHandlers(config)
	if err != nil {
		return fmt.Errorf("iptables handlers: %w", err)
	}
	for family, h := range iptables {
		saver := utils.NewIPTablesSaveRestore(family)
		save := func(buf *bytes.Buffer) error { return saver.SaveInto(filter, buf) }
		iptables[family] = newSnapshotReads(h, save, syncsEnded)
	}
	var ipsetMutex sync.Mutex
	npc, err := netpol.NewNetworkPolicyController(kr.Client, config, pods, policies, namespaces, &ipsetMutex, iptables, ipsets)
	if err != nil {
		return fmt.Errorf("network policy controller: %w", err)
	}
	requestSync := npc.RequestFullSync
	if *podSyncInterval > 0 {
		limiter := newSyncLimiter(*podSyncInterval, npc.RequestFullSync, syncsEnded)
		go limiter.Run(stop)
		requestSync = limiter.Request
	}
	if _, err := pods.AddEventHandler(ruleRelevantPodEvents(requestSync)); err != nil {
		return err
	}
	if _, err := namespaces.AddEventHandler(npc.NamespaceEventHandler); err != nil {
		return err
	}
	if _, err := policies.AddEventHandler(npc.NetworkPolicyEventHandler); err != nil {
		return err
	}

	// The controller sends a heartbeat per sync and blocks when nobody
	// reads them; no health server runs here (no port is opened).
	heartbeats := make(chan *healthcheck.ControllerHeartbeat, 10)
	go func() {
		for range heartbeats { //nolint:revive // drained on purpose
		}
	}()

	var wg sync.WaitGroup
	wg.Add(1)
	go npc.Run(heartbeats, stop, &wg)

	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM)
	<-signals
	klog.Info("shutting down")
	close(stop)
	wg.Wait()
	return nil
}

// syncsEnded is how many full syncs the network policy controller has
// ended: the sample count of its sync-time histogram, which it observes
// when a sync returns, aborted or not.
func syncsEnded() uint64 {
	var m dto.Metric
	if err := metrics.ControllerIptablesSyncTime.Write(&m); err != nil {
		return 0
	}
	return m.GetHistogram().GetSampleCount()
}
