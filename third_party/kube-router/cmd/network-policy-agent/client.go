package main

import (
	"fmt"

	"github.com/cloudnativelabs/kube-router/v2/pkg/options"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// protobufClient is the agent's API client as kube-router makes it
// (pkg/cmd/kube-router.go, v2.1.0: the kubeconfig or master if given, else
// in-cluster), except that it asks for protobuf instead of JSON.
//
// Why: the agent watches every pod of its cluster (a policy's peers may run
// on any node), and a Tekton pod changes a dozen times in its short life.
// With JSON, decoding those watch events was 46 % of the agents' own CPU
// during a benchmark row (perf over two batches of 15 pods, 570 of 1,235
// samples in client-go's JSON decoder), three times what their full syncs
// took. The kubelets and the controller-manager ask for protobuf too, and
// the apiserver encodes an event once per format, so it no longer encodes
// JSON for the agents alone. Every kind the agent reads (pods, namespaces,
// nodes, network policies) is built in and served in protobuf.
func protobufClient(config *options.KubeRouterConfig) (kubernetes.Interface, error) {
	var rc *rest.Config
	var err error
	if config.Master != "" || config.Kubeconfig != "" {
		rc, err = clientcmd.BuildConfigFromFlags(config.Master, config.Kubeconfig)
	} else {
		rc, err = rest.InClusterConfig()
	}
	if err != nil {
		return nil, fmt.Errorf("client configuration: %w", err)
	}
	rc.ContentType = runtime.ContentTypeProtobuf
	rc.AcceptContentTypes = runtime.ContentTypeProtobuf + "," + runtime.ContentTypeJSON
	return kubernetes.NewForConfig(rc)
}
