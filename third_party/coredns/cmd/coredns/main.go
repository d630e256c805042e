// Command coredns is CoreDNS with only the plugins the workload clusters'
// DNS needs, as CoreDNS documents building it with a plugin list of one's
// own: the kubernetes plugin answers cluster.local from Services and
// EndpointSlices; errors, log, health, ready, cache and loadbalance as
// Kubernetes' own CoreDNS manifest uses them. No forward plugin: nothing
// beyond the cluster is resolved (the stack has no upstream resolver
// tenants may use).
package main

import (
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/coremain"

	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/loadbalance"
	_ "github.com/coredns/coredns/plugin/log"
	_ "github.com/coredns/coredns/plugin/ready"
)

// directives are the plugins in CoreDNS's execution order (its plugin.cfg).
var directives = []string{"ready", "health", "errors", "log", "loadbalance", "cache", "kubernetes"}

func main() {
	dnsserver.Directives = directives
	coremain.Run()
}
