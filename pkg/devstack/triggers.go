package devstack

import (
	"context"
	"net/http"
	"time"

	"github.com/kcp-dev/logicalcluster/v3"

	"github.com/pipelines-service/pipelines-service/pkg/provider"
	"github.com/pipelines-service/pipelines-service/pkg/triggers"
)

// The triggers sink serves every tenant's EventListeners behind the
// gateway, which passes it /hooks/….
const (
	TriggersSinkAddress      = "127.0.0.1:6071"
	TriggersSinkDebugAddress = "127.0.0.1:6072"
)

// TriggersURL is the base of EventListeners' addresses: the gateway's
// /hooks/.
func (c Config) TriggersURL() string {
	return c.GatewayURL() + triggers.PathPrefix[:len(triggers.PathPrefix)-1]
}

func (c Config) triggersSinkBinary() string { return c.Path("bin", "triggers-sink") }

func (c Config) triggersSinkProcess(buildID string) *process {
	p := c.newProcess("triggers-sink", c.triggersSinkBinary(),
		"--kubeconfig="+c.Path("triggers-sink", "kcp.kubeconfig"),
		"--provider-workspace="+providerPath().String(),
		"--listen="+TriggersSinkAddress,
		"--debug-listen="+TriggersSinkDebugAddress)
	p.env = []string{"PIPELINES_SERVICE_BUILD=" + buildID}
	p.ports = []string{TriggersSinkAddress, TriggersSinkDebugAddress}
	return p
}

// startTriggersSink writes the sink's identity, (re)starts it when its
// binary changed, and waits until its informers have synced.
func (s *Stack) startTriggersSink(ctx context.Context) error {
	c := s.cfg
	if err := s.writeKCPUserKubeconfig(c.Path("triggers-sink", "kcp.kubeconfig"), provider.TriggersSinkUser, logicalcluster.Path{}); err != nil {
		return err
	}
	buildID, err := c.checkoutBuildID(ctx, c.triggersSinkBinary())
	if err != nil {
		return err
	}
	p := c.triggersSinkProcess(buildID)
	if err := p.start(); err != nil {
		return err
	}
	return p.waitFor(ctx, 60*time.Second, "serving", func(ctx context.Context) error {
		return answersOK(ctx, http.DefaultClient, http.MethodGet, "http://"+TriggersSinkDebugAddress+"/readyz")
	})
}
