// Command krustlet turns this machine into a Kubernetes node that runs pods
// as WebAssembly modules. See package app for the command line.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"k8s.io/klog/v2"

	"github.com/krustlet/krustlet-go/cmd/krustlet/app"
	"github.com/krustlet/krustlet-go/pkg/config"
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

// runNode starts the node agent.
func runNode(_ context.Context, _ *config.Config) error {
	return errors.New("the node agent is not implemented yet")
}
