package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	bootstrapapi "k8s.io/cluster-bootstrap/token/api"

	"github.com/krustlet/krustlet-go/test/framework/controlplane"
	"github.com/krustlet/krustlet-go/test/framework/krustlet"
)

// kubeadmJoinLine is the line `kubeadm token create --print-join-command`
// prints for token on cp (endpoint without a scheme, trailing space
// included).
func kubeadmJoinLine(cp *controlplane.ControlPlane, token string) string {
	return fmt.Sprintf("kubeadm join %s --token %s --discovery-token-ca-cert-hash %s ",
		strings.TrimPrefix(cp.APIServerURL, "https://"), token, cp.PKI.CAHash())
}

// The line kubeadm prints, with krustlet for kubeadm, joins a node that
// becomes Ready.
func TestJoinKubeadmPrintedLine(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	client := cluster.AdminClient()
	// A token of its own, as kubeadm token create makes one; join needs
	// the cluster's signature of cluster-info for it.
	token, err := controlplane.CreateBootstrapToken(ctx, client, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := controlplane.WaitForClusterInfoSignature(ctx, client, token, time.Minute); err != nil {
		t.Fatal(err)
	}
	line := strings.Replace(kubeadmJoinLine(cluster, token), "kubeadm", "krustlet", 1)
	t.Logf("joining with: %s", line)
	fields := strings.Fields(line) // krustlet join ENDPOINT --token ...
	n := joinNodeWith(t, cluster, krustlet.Options{Name: "e2e-kubeadm-line", Discovery: fields[2:]})
	waitForNodeReady(ctx, t, client, n.Name, v1.ConditionTrue, 2*time.Minute)

	bootstrap, err := clientcmd.LoadFromFile(filepath.Join(n.DataDir, "bootstrap-kubeconfig"))
	if err != nil {
		t.Fatal(err)
	}
	c := bootstrap.Contexts[bootstrap.CurrentContext]
	if got := bootstrap.Clusters[c.Cluster].Server; got != cluster.APIServerURL {
		t.Errorf("bootstrap kubeconfig server %q, want %q", got, cluster.APIServerURL)
	}
	if got := bootstrap.AuthInfos[c.AuthInfo].Token; got != token {
		t.Errorf("bootstrap kubeconfig does not authenticate with the token of the line")
	}
	if log, _ := os.ReadFile(n.LogPath()); bytes.Contains(log, []byte("has been deprecated")) {
		t.Errorf("the kubeadm line used a deprecated form:\n%s", readTail(n.LogPath(), 20))
	}
}

// File discovery: a kubeconfig holding the server and the cluster CA (the
// one in cluster-info, as kubeadm's documentation suggests) and a TLS
// bootstrap token join a node that becomes Ready.
func TestJoinDiscoveryFile(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	client := cluster.AdminClient()
	cm, err := client.CoreV1().ConfigMaps(metav1.NamespacePublic).Get(ctx, bootstrapapi.ConfigMapClusterInfo, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "cluster-info.yaml")
	if err := os.WriteFile(file, []byte(cm.Data[bootstrapapi.KubeConfigKey]), 0o600); err != nil {
		t.Fatal(err)
	}
	n := joinNodeWith(t, cluster, krustlet.Options{
		Name:      "e2e-discovery-file",
		Discovery: []string{"--discovery-file", file, "--tls-bootstrap-token", cluster.Token},
	})
	waitForNodeReady(ctx, t, client, n.Name, v1.ConditionTrue, 2*time.Minute)
	bootstrap, err := clientcmd.LoadFromFile(filepath.Join(n.DataDir, "bootstrap-kubeconfig"))
	if err != nil {
		t.Fatal(err)
	}
	c := bootstrap.Contexts[bootstrap.CurrentContext]
	if cl := bootstrap.Clusters[c.Cluster]; cl.Server != cluster.APIServerURL || !bytes.Equal(cl.CertificateAuthorityData, cluster.PKI.CACertPEM()) {
		t.Errorf("bootstrap kubeconfig server %q, CA %q; want the cluster's", cl.Server, cl.CertificateAuthorityData)
	}
}

// The kubeadm line refused: a kubeadm-only flag, a wrong hash, an expired
// token, an unreachable endpoint, a discovery file without credentials.
// Each exits with status 1, says why in kubeadm's words where kubeadm has
// some, shows no stack trace and writes nothing.
func TestJoinKubeadmRefusals(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	expired, err := controlplane.CreateBootstrapToken(ctx, cluster.AdminClient(), 0)
	if err != nil {
		t.Fatal(err)
	}
	expiredID, _, _ := strings.Cut(expired, ".")
	port, err := controlplane.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	unreachable := "127.0.0.1:" + strconv.Itoa(port)
	endpoint := strings.TrimPrefix(cluster.APIServerURL, "https://")
	wrongHash := "sha256:" + strings.Repeat("ab", 32)
	fileWithoutCredentials := filepath.Join(t.TempDir(), "cluster-info.yaml")
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters[""] = &clientcmdapi.Cluster{Server: cluster.APIServerURL, CertificateAuthorityData: cluster.PKI.CACertPEM()}
	if err := clientcmd.WriteToFile(*cfg, fileWithoutCredentials); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		args []string
		want string // a line of stderr starts with it
	}{
		{
			name: "kubeadm-only flag",
			args: append(strings.Fields(kubeadmJoinLine(cluster, cluster.Token))[2:], "--control-plane"),
			want: "Error: --control-plane is a kubeadm join flag that krustlet join does not support: krustlet joins worker nodes only; it cannot host a control plane instance",
		},
		{
			name: "wrong CA hash",
			args: []string{endpoint, "--token", cluster.Token, "--discovery-token-ca-cert-hash", wrongHash},
			want: `Error: couldn't validate the identity of the API Server: cluster CA found in cluster-info ConfigMap is invalid: none of the public keys "` +
				cluster.PKI.CAHash() + `" are pinned`,
		},
		{
			name: "expired token",
			args: strings.Fields(kubeadmJoinLine(cluster, expired))[2:],
			want: `Error: couldn't validate the identity of the API Server: token id "` + expiredID + `" is invalid for this cluster or it has expired. ` +
				`Use "kubeadm token create" on the control-plane node to create a new valid token`,
		},
		{
			name: "unreachable endpoint",
			args: []string{unreachable, "--token", cluster.Token, "--discovery-token-ca-cert-hash", cluster.PKI.CAHash(), "--discovery-timeout=3s"},
			want: `Error: couldn't validate the identity of the API Server: failed to request the cluster-info ConfigMap: Get "https://` + unreachable +
				`/api/v1/namespaces/kube-public/configmaps/cluster-info?timeout=10s": dial tcp ` + unreachable + `: connect: connection refused`,
		},
		{
			name: "discovery file without credentials",
			args: []string{"--discovery-file", fileWithoutCredentials},
			want: "Error: --tls-bootstrap-token (or --token) is required: the discovery file " + fileWithoutCredentials + " carries no credentials",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dataDir := filepath.Join(t.TempDir(), "data")
			args := append(append([]string{"join"}, tc.args...), "--node-name=refused", "--data-dir="+dataDir, "--healthz-port=0")
			cmd := exec.CommandContext(ctx, krustletBin, args...)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != 1 {
				t.Fatalf("join: %v, want exit status 1; stderr:\n%s", err, stderr.String())
			}
			found := false
			for _, l := range strings.Split(stderr.String(), "\n") {
				found = found || strings.HasPrefix(l, tc.want)
			}
			if !found {
				t.Errorf("no stderr line starts with\n%s\nstderr:\n%s", tc.want, stderr.String())
			}
			if s := stderr.String(); strings.Contains(s, "goroutine ") || strings.Contains(s, "panic:") {
				t.Errorf("stderr has a stack trace:\n%s", s)
			}
			if stdout.Len() > 0 {
				t.Errorf("stdout: %q", stdout.String())
			}
			if entries, err := os.ReadDir(dataDir); err == nil || len(entries) > 0 {
				t.Errorf("join touched the data dir: %v %v", entries, err)
			}
		})
	}
}
