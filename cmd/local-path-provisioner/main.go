// Command local-path-provisioner is the local stack's storage provisioner:
// PVCs of StorageClass local-path get a directory on the node.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"

	"go.uber.org/zap"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/pipelines-service/pipelines-service/pkg/command"
	"github.com/pipelines-service/pipelines-service/pkg/devstack/localpath"
)

func main() {
	kubeconfig := flag.String("kubeconfig", "", "workload cluster kubeconfig")
	node := flag.String("node", "", "name of the node whose volumes this serves")
	dir := flag.String("dir", "", "directory holding the volumes")
	flag.Parse()
	command.Run("local-path-provisioner", func(ctx context.Context, log *zap.SugaredLogger) error {
		if *node == "" || *dir == "" {
			return errors.New("--node and --dir are required")
		}
		cfg, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
		if err != nil {
			return fmt.Errorf("kubeconfig: %w", err)
		}
		client, err := kubernetes.NewForConfig(cfg)
		if err != nil {
			return fmt.Errorf("client: %w", err)
		}
		p, err := localpath.New(client, *node, *dir, log)
		if err != nil {
			return fmt.Errorf("setup: %w", err)
		}
		return p.Run(ctx)
	})
}
