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
	raiseOpenFileLimit()
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

// raiseOpenFileLimit lifts the soft limit on open files to the hard one, as
// container runtimes do: every running module holds a few descriptors (its
// output pipes and preopened directories), and the usual soft limit of 1,024
// would cap a node at a few hundred pods.
func raiseOpenFileLimit() {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err == nil && l.Cur < l.Max {
		l.Cur = l.Max
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l)
	}
}
