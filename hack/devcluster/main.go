// Command devcluster brings the local development cluster up and down: a
// real control plane on loopback (see test/framework/controlplane) and one
// krustlet node joined to it with a bootstrap token, as an operator would. `make up` and `make down`
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
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"

	"github.com/krustlet/krustlet-go/test/framework/controlplane"
	"github.com/krustlet/krustlet-go/test/framework/krustlet"
	"github.com/krustlet/krustlet-go/test/framework/registry"
	"github.com/krustlet/krustlet-go/test/framework/wasmbuild"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	fs := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	dir := fs.String("dir", ".krustlet-dev", "directory for the cluster's state, logs and kubeconfig")
	kubeconfig := fs.String("kubeconfig", "", "admin kubeconfig (approve-serving only)")
	krustletBin := fs.String("krustlet", "bin/krustlet", "krustlet binary that joins the cluster (up only)")
	_ = fs.Parse(os.Args[2:])
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	var err error
	switch os.Args[1] {
	case "up":
		err = up(ctx, *dir, *krustletBin)
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

// nodeName is the name of the krustlet node that `make up` joins.
const nodeName = "krustlet-dev"

func up(ctx context.Context, dir, krustletBin string) error {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	if krustletBin, err = filepath.Abs(krustletBin); err != nil {
		return err
	}
	if _, err := os.Stat(krustletBin); err != nil {
		return fmt.Errorf("no krustlet binary (run make build): %w", err)
	}
	if url, _, _, _, running, err := controlplane.Describe(dir); err == nil && running {
		fmt.Printf("The local cluster is already running at %s (state in %s).\nRun `make down` to stop it first.\n", url, dir)
		printSourceHint(dir)
		return nil
	}
	// Whatever a previous run left (stopped processes, old PKI, volumes
	// still mounted) goes.
	if _, err := controlplane.StopDir(dir); err != nil {
		return err
	}
	if err := krustlet.UnmountAll(dir); err != nil {
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
	reg, err := startRegistry(ctx, cp, dir)
	if err != nil {
		return err
	}
	fmt.Printf("==> joining node %s with the bootstrap token\n", nodeName)
	node, err := krustlet.Join(krustletBin, cp, krustlet.Options{
		Name:    nodeName,
		DataDir: filepath.Join(dir, "node"),
		LogDir:  filepath.Join(dir, "logs"),
		Detach:  true,
		Extra:   []string{"--insecure-registries=" + reg},
	})
	if err != nil {
		return err
	}
	if err := cp.Track(node.Proc); err != nil {
		return err
	}
	if err := waitForNode(ctx, cp, nodeName, node.LogPath()); err != nil {
		return err
	}
	join := fmt.Sprintf("krustlet join %s --token %s --discovery-token-ca-cert-hash %s", strings.TrimPrefix(cp.APIServerURL, "https://"), cp.Token, cp.PKI.CAHash())
	env := strings.Join([]string{
		"# Source this file: . " + filepath.Join(dir, "env"),
		"export KUBECONFIG=" + shellQuote(cp.AdminKubeconfig),
		"export PATH=" + shellQuote(cp.Binaries.Dir) + ":\"$PATH\"",
		"export NODE_NAME=" + nodeName,
		"export REGISTRY=" + reg,
		"export KRUSTLET_JOIN_COMMAND=" + shellQuote(join),
		"",
	}, "\n")
	if err := os.WriteFile(filepath.Join(dir, "env"), []byte(env), 0o600); err != nil {
		return err
	}
	fmt.Printf("\nThe local cluster is up: Kubernetes %s at %s; logs in %s.\n", cp.Binaries.KubernetesVersion, cp.APIServerURL, filepath.Join(dir, "logs"))
	fmt.Printf("Node %s joined (log: %s).\n", nodeName, node.LogPath())
	kubectl := exec.CommandContext(ctx, cp.Binaries.Kubectl, "--kubeconfig", cp.AdminKubeconfig, "get", "nodes", "-o", "wide")
	kubectl.Stdout, kubectl.Stderr = os.Stdout, os.Stderr
	_ = kubectl.Run()
	if err := runSample(ctx, cp, krustletBin, reg); err != nil {
		return err
	}
	fmt.Printf("\nMore nodes join with:\n  %s --node-name NAME --port PORT --data-dir DIR\n", join)
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
	if err := krustlet.UnmountAll(dir); err != nil {
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

// samplePod is the pod `make up` runs to show the node at work.
const samplePod = "hello-wasm"

// startRegistry starts a CNCF distribution registry (Debian's
// docker-registry) on a free loopback port, anonymous, with its storage and
// config under dir, and returns its host:port.
func startRegistry(ctx context.Context, cp *controlplane.ControlPlane, dir string) (string, error) {
	bin, err := registry.FindBinary()
	if err != nil {
		return "", fmt.Errorf("%w (install it with: apt-get install docker-registry)", err)
	}
	port, err := controlplane.FreePort()
	if err != nil {
		return "", err
	}
	host := fmt.Sprintf("127.0.0.1:%d", port)
	config := filepath.Join(dir, "registry.yaml")
	yaml := fmt.Sprintf("version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: %s\n  delete:\n    enabled: true\nhttp:\n  addr: %s\n",
		filepath.Join(dir, "registry"), host)
	if err := os.WriteFile(config, []byte(yaml), 0o600); err != nil {
		return "", err
	}
	fmt.Printf("==> starting a registry on %s\n", host)
	if err := cp.Spawn("registry", bin, "serve", config); err != nil {
		return "", err
	}
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+host+"/v2/", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false, nil
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, nil
	})
	if err != nil {
		return "", fmt.Errorf("the registry on %s did not answer; see %s", host, cp.LogPath("registry"))
	}
	return host, nil
}

// runSample pushes a sample module to the registry with krustlet push, runs
// it as a pod on the node and prints the pods and its logs, as a user would
// look at them.
func runSample(ctx context.Context, cp *controlplane.ControlPlane, krustletBin, reg string) error {
	module, err := wasmbuild.Build(ctx, "testmod")
	if err != nil {
		return fmt.Errorf("building the sample module: %w", err)
	}
	image := reg + "/hello-wasm:v1"
	fmt.Printf("==> pushing the sample module to %s\n", image)
	push := exec.CommandContext(ctx, krustletBin, "push", "--insecure", module, image)
	push.Stdout, push.Stderr = os.Stdout, os.Stderr
	if err := push.Run(); err != nil {
		return fmt.Errorf("krustlet push: %w", err)
	}
	fmt.Printf("==> running the sample pod %s (image %s)\n", samplePod, image)
	client := cp.AdminClient()
	pod := &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: samplePod, Namespace: metav1.NamespaceDefault},
		Spec: v1.PodSpec{
			RestartPolicy: v1.RestartPolicyNever,
			NodeSelector:  map[string]string{v1.LabelHostname: nodeName},
			Tolerations:   []v1.Toleration{{Key: "kubernetes.io/arch", Operator: v1.TolerationOpEqual, Value: "wasm32-wasi"}},
			Containers: []v1.Container{{
				Name:  "hello",
				Image: image,
				Args:  []string{"echo", "Hello from WebAssembly on krustlet!", "env", "POD_NAME", "args"},
				Env: []v1.EnvVar{{Name: "POD_NAME", ValueFrom: &v1.EnvVarSource{
					FieldRef: &v1.ObjectFieldSelector{FieldPath: "metadata.name"}}}},
			}},
		},
	}
	if _, err := client.CoreV1().Pods(pod.Namespace).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("creating the sample pod: %w", err)
	}
	err = wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		p, err := client.CoreV1().Pods(pod.Namespace).Get(ctx, pod.Name, metav1.GetOptions{})
		return err == nil && (p.Status.Phase == v1.PodSucceeded || p.Status.Phase == v1.PodFailed), nil
	})
	if err != nil {
		return fmt.Errorf("the sample pod did not finish: %w", err)
	}
	for _, args := range [][]string{{"get", "pods", "-o", "wide"}, {"logs", samplePod}} {
		fmt.Printf("\n$ kubectl %s\n", strings.Join(args, " "))
		kubectl := exec.CommandContext(ctx, cp.Binaries.Kubectl, append([]string{"--kubeconfig", cp.AdminKubeconfig}, args...)...)
		kubectl.Stdout, kubectl.Stderr = os.Stdout, os.Stderr
		if err := kubectl.Run(); err != nil {
			return fmt.Errorf("kubectl %s: %w", strings.Join(args, " "), err)
		}
	}
	return nil
}

// waitForNode waits until the node is Ready, or fails with the end of its
// log.
func waitForNode(ctx context.Context, cp *controlplane.ControlPlane, name, log string) error {
	if _, err := krustlet.WaitForReady(ctx, cp.AdminClient(), name, v1.ConditionTrue, 2*time.Minute); err != nil {
		data, _ := os.ReadFile(log)
		lines := strings.Split(strings.TrimSpace(string(data)), "\n")
		if len(lines) > 20 {
			lines = lines[len(lines)-20:]
		}
		return fmt.Errorf("%w; end of %s:\n%s", err, log, strings.Join(lines, "\n"))
	}
	return nil
}

func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
