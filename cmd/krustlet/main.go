// Command krustlet turns this machine into a Kubernetes node that runs pods
// as WebAssembly modules. See package app for the command line.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"k8s.io/klog/v2"

	"github.com/krustlet/krustlet-go/cmd/krustlet/app"
	"github.com/krustlet/krustlet-go/pkg/config"
	"github.com/krustlet/krustlet-go/pkg/kubelet"
)

func main() {
	os.Exit(run())
}

func run() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	defer klog.Flush()

	if err := app.NewKrustletCommand(runNode).ExecuteContext(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "Error: %v\n", err)
		return 1
	}
	return 0
}

// runNode runs the node agent.
func runNode(ctx context.Context, cfg *config.Config) error {
	return kubelet.Run(ctx, cfg)
}
