// Command devcluster brings the local development cluster up and down: a
// real control plane on loopback (see test/framework/controlplane), and, as
// the node agent grows, a joined krustlet node. `make up` and `make down`
// call it; its state lives in one directory (default .krustlet-dev).
//
//	devcluster up [--dir DIR]       start, or say that it already runs
//	devcluster down [--dir DIR]     stop everything it started, by PID
//	devcluster status [--dir DIR]   print what runs
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"

	"github.com/krustlet/krustlet-go/test/framework/controlplane"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	fs := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	dir := fs.String("dir", ".krustlet-dev", "directory for the cluster's state, logs and kubeconfig")
	kubeconfig := fs.String("kubeconfig", "", "admin kubeconfig (approve-serving only)")
	_ = fs.Parse(os.Args[2:])
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	var err error
	switch os.Args[1] {
	case "up":
		err = up(ctx, *dir)
	case "down":
		err = down(*dir)
	case "status":
		err = status(*dir)
	case "approve-serving":
		err = approveServing(ctx, *kubeconfig)
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "devcluster:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: devcluster up|down|status [--dir DIR]")
	os.Exit(2)
}

func up(ctx context.Context, dir string) error {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	if url, _, _, _, running, err := controlplane.Describe(dir); err == nil && running {
		fmt.Printf("The local cluster is already running at %s (state in %s).\nRun `make down` to stop it first.\n", url, dir)
		printSourceHint(dir)
		return nil
	}
	// Whatever a previous run left (stopped processes, old PKI) goes.
	if _, err := controlplane.StopDir(dir); err != nil {
		return err
	}
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	cp, err := controlplane.Start(ctx, controlplane.Options{
		Dir:    dir,
		Detach: true,
		Logf:   func(f string, a ...any) { fmt.Printf("==> "+f+"\n", a...) },
	})
	if err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	if err := cp.Spawn("serving-approver", self, "approve-serving", "--kubeconfig", cp.AdminKubeconfig); err != nil {
		return err
	}
	join := fmt.Sprintf("krustlet join --server %s --token %s --discovery-token-ca-cert-hash %s", cp.APIServerURL, cp.Token, cp.PKI.CAHash())
	env := strings.Join([]string{
		"# Source this file: . " + filepath.Join(dir, "env"),
		"export KUBECONFIG=" + shellQuote(cp.AdminKubeconfig),
		"export KRUSTLET_JOIN_COMMAND=" + shellQuote(join),
		"",
	}, "\n")
	if err := os.WriteFile(filepath.Join(dir, "env"), []byte(env), 0o600); err != nil {
		return err
	}
	fmt.Printf("\nThe local cluster is up: Kubernetes %s at %s; logs in %s.\n", cp.Binaries.KubernetesVersion, cp.APIServerURL, filepath.Join(dir, "logs"))
	fmt.Printf("A node joins it with:\n  %s\n", join)
	printSourceHint(dir)
	return nil
}

func printSourceHint(dir string) {
	fmt.Printf("Use it from your shell with:\n  source %s\n  kubectl get nodes\n", filepath.Join(dir, "env"))
}

func down(dir string) error {
	running, err := controlplane.StopDir(dir)
	if err != nil {
		return err
	}
	if running {
		fmt.Printf("Stopped the local cluster in %s (logs kept in %s).\n", dir, filepath.Join(dir, "logs"))
	} else {
		fmt.Println("No local cluster is running.")
	}
	return nil
}

func status(dir string) error {
	url, kubeconfig, _, _, running, err := controlplane.Describe(dir)
	if errors.Is(err, os.ErrNotExist) || (err == nil && !running) {
		fmt.Println("No local cluster is running.")
		return nil
	}
	if err != nil {
		return err
	}
	fmt.Printf("Running at %s; KUBECONFIG=%s\n", url, kubeconfig)
	return nil
}

func approveServing(ctx context.Context, kubeconfig string) error {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return err
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	return controlplane.RunServingApprover(klog.NewContext(ctx, klog.Background()), client)
}

func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
