// Command local-path-provisioner is the local stack's storage provisioner:
// PVCs of StorageClass local-path get a directory on the node.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"go.uber.org/zap"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/pipelines-service/pipelines-service/pkg/devstack/localpath"
)

func main() {
	kubeconfig := flag.String("kubeconfig", "", "workload cluster kubeconfig")
	node := flag.String("node", "", "name of the node whose volumes this serves")
	dir := flag.String("dir", "", "directory holding the volumes")
	flag.Parse()
	logger, err := zap.NewProduction()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	log := logger.Sugar()
	if *node == "" || *dir == "" {
		log.Fatal("--node and --dir are required")
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
	if err != nil {
		log.Fatalw("kubeconfig", "error", err)
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		log.Fatalw("client", "error", err)
	}
	p, err := localpath.New(client, *node, *dir, log)
	if err != nil {
		log.Fatalw("setup", "error", err)
	}
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	if err := p.Run(ctx); err != nil {
		log.Fatalw("stopped", "error", err)
	}
}
