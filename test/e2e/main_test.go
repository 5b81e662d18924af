package e2e

import (
	"context"
	"flag"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/krustlet/krustlet-go/test/framework/controlplane"
	"github.com/krustlet/krustlet-go/test/framework/krustlet"
)

var (
	// cluster is the control plane shared by the tests of this package.
	cluster *controlplane.ControlPlane
	// krustletBin is the krustlet binary built for this run.
	krustletBin string
)

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		// Every test here needs the control plane.
		fmt.Println("e2e: skipped in -short mode")
		os.Exit(0)
	}
	os.Exit(runWithCluster(m))
}

func runWithCluster(m *testing.M) int {
	dir, err := os.MkdirTemp("", "krustlet-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	cluster, err = controlplane.Start(ctx, controlplane.Options{
		Dir:  dir,
		Logf: func(f string, a ...any) { fmt.Printf("e2e: "+f+"\n", a...) },
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e: starting the control plane:", err)
		return 1
	}
	// kubelet-serving CSRs of the nodes are approved as an operator's
	// approver would, so that the API server can reach their node API.
	go controlplane.RunServingApprover(ctx, cluster.AdminClient()) //nolint:errcheck
	root, err := controlplane.RepoRoot()
	if err == nil {
		krustletBin, err = krustlet.Build(ctx, root, dir)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		cluster.Stop()
		return 1
	}
	code := m.Run()
	if err := stopSharedNode(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: stopping the shared node:", err)
		code = 1
	}
	if err := cluster.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: stopping the control plane:", err)
		code = 1
	}
	if cluster.Running() {
		fmt.Fprintln(os.Stderr, "e2e: a control-plane process is still running after Stop")
		code = 1
	}
	if code == 0 {
		os.RemoveAll(dir)
	} else {
		fmt.Fprintln(os.Stderr, "e2e: control-plane logs kept in", dir+"/logs")
	}
	return code
}
