package controlplane

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

const (
	// ServiceCIDR is the service range of the local cluster.
	ServiceCIDR = "10.0.0.0/24"
	// ClusterName names the local cluster in kubeconfigs.
	ClusterName = "krustlet-dev"
)

// Options configure Start.
type Options struct {
	// Dir holds the PKI, kubeconfigs, etcd data, logs and state. Required.
	Dir string
	// RepoRoot is the krustlet-go checkout (for hack/k8s and hack/etcd);
	// found from the working directory when empty.
	RepoRoot string
	// CacheDir keeps built binaries; DefaultCacheDir() when empty.
	CacheDir string
	// Detach lets the processes outlive the calling process (make up). They
	// are stopped later with StopDir.
	Detach bool
	// ClusterSigningDuration is how long certificates signed by the
	// controller-manager last, unless a CSR asks for less. Default one year.
	ClusterSigningDuration time.Duration
	// Logf receives progress messages. Default: discard.
	Logf func(format string, args ...any)
}

// ControlPlane is a running local control plane.
type ControlPlane struct {
	Dir      string
	PKI      *PKI
	Binaries *Binaries
	// APIServerURL is https://127.0.0.1:PORT.
	APIServerURL string
	// AdminKubeconfig is the path of a cluster-admin kubeconfig.
	AdminKubeconfig string
	// Token is the bootstrap token ("id.secret") that nodes join with.
	Token string

	procs    []*Process
	detached bool
	admin    *rest.Config
}

// state is what a detached control plane leaves in Dir/state.json.
type state struct {
	APIServerURL    string     `json:"apiServerURL"`
	AdminKubeconfig string     `json:"adminKubeconfig"`
	Token           string     `json:"token"`
	CAHash          string     `json:"caHash"`
	Processes       []*Process `json:"processes"`
}

// Start builds (or reuses) the binaries and brings a control plane up; see
// the package documentation. On error everything already started is stopped.
func Start(ctx context.Context, opts Options) (_ *ControlPlane, err error) {
	if opts.Dir == "" {
		return nil, errors.New("controlplane: Options.Dir is required")
	}
	if opts.Logf == nil {
		opts.Logf = func(string, ...any) {}
	}
	if opts.RepoRoot == "" {
		if opts.RepoRoot, err = RepoRoot(); err != nil {
			return nil, err
		}
	}
	if opts.CacheDir == "" {
		opts.CacheDir = DefaultCacheDir()
	}
	if opts.ClusterSigningDuration == 0 {
		opts.ClusterSigningDuration = certValidity
	}
	dir, err := filepath.Abs(opts.Dir)
	if err != nil {
		return nil, err
	}
	bins, err := EnsureBinaries(ctx, opts.RepoRoot, opts.CacheDir, opts.Logf)
	if err != nil {
		return nil, err
	}
	_, serviceNet, _ := net.ParseCIDR(ServiceCIDR)
	serviceIP := append(net.IP(nil), serviceNet.IP.To4()...)
	serviceIP[3]++
	pki, err := newPKI(filepath.Join(dir, "pki"), serviceIP)
	if err != nil {
		return nil, err
	}
	ports, err := freePorts(5)
	if err != nil {
		return nil, err
	}
	etcdClient, etcdPeer, apiPort, cmPort, schedPort := ports[0], ports[1], ports[2], ports[3], ports[4]
	cp := &ControlPlane{
		Dir:             dir,
		PKI:             pki,
		Binaries:        bins,
		APIServerURL:    "https://127.0.0.1:" + strconv.Itoa(apiPort),
		AdminKubeconfig: filepath.Join(dir, "kubeconfig"),
		detached:        opts.Detach,
	}
	defer func() {
		if err != nil {
			cp.Stop()
		}
	}()
	kubeconfigs := map[string][2]string{
		cp.AdminKubeconfig: {pki.AdminCert, pki.AdminKey},
		filepath.Join(dir, "controller-manager.kubeconfig"): {pki.ControllerManagerCert, pki.ControllerManagerKey},
		filepath.Join(dir, "scheduler.kubeconfig"):          {pki.SchedulerCert, pki.SchedulerKey},
	}
	for path, pair := range kubeconfigs {
		if err := cp.writeKubeconfig(path, pair[0], pair[1]); err != nil {
			return nil, err
		}
	}
	if cp.admin, err = clientcmd.BuildConfigFromFlags("", cp.AdminKubeconfig); err != nil {
		return nil, err
	}
	logs := filepath.Join(dir, "logs")
	start := func(name, bin string, args ...string) (*Process, error) {
		p, err := StartProcess(name, bin, args, logs, opts.Detach)
		if err != nil {
			return nil, err
		}
		cp.procs = append(cp.procs, p)
		return p, nil
	}

	opts.Logf("starting etcd on 127.0.0.1:%d", etcdClient)
	etcdURL := fmt.Sprintf("http://127.0.0.1:%d", etcdClient)
	peerURL := fmt.Sprintf("http://127.0.0.1:%d", etcdPeer)
	etcd, err := start("etcd", bins.Etcd,
		"--name=default",
		"--data-dir="+filepath.Join(dir, "etcd"),
		"--listen-client-urls="+etcdURL, "--advertise-client-urls="+etcdURL,
		"--listen-peer-urls="+peerURL, "--initial-advertise-peer-urls="+peerURL,
		"--initial-cluster=default="+peerURL,
		"--unsafe-no-fsync", "--log-level=warn",
	)
	if err != nil {
		return nil, err
	}
	if err := waitHealthy(ctx, etcd, etcdURL+"/health", nil, time.Minute); err != nil {
		return nil, err
	}

	auditPolicy := filepath.Join(dir, "audit-policy.yaml")
	if err := os.WriteFile(auditPolicy, []byte(auditPolicyYAML), 0o644); err != nil {
		return nil, err
	}
	opts.Logf("starting kube-apiserver %s on %s", bins.KubernetesVersion, cp.APIServerURL)
	apiserver, err := start("kube-apiserver", bins.APIServer,
		"--etcd-servers="+etcdURL,
		"--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
		"--secure-port="+strconv.Itoa(apiPort),
		// The endpoint reconciler refuses a loopback address for the
		// kubernetes Service; nothing in the local cluster needs it.
		"--endpoint-reconciler-type=none",
		"--tls-cert-file="+pki.APIServerCert, "--tls-private-key-file="+pki.APIServerKey,
		"--client-ca-file="+pki.CACert,
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file="+pki.ServiceAccountPub,
		"--service-account-signing-key-file="+pki.ServiceAccountKey,
		"--service-cluster-ip-range="+ServiceCIDR,
		"--authorization-mode=Node,RBAC",
		"--enable-admission-plugins=NodeRestriction",
		"--enable-bootstrap-token-auth",
		"--allow-privileged=true",
		"--kubelet-client-certificate="+pki.KubeletClientCert, "--kubelet-client-key="+pki.KubeletClientKey,
		"--kubelet-certificate-authority="+pki.CACert,
		"--kubelet-preferred-address-types=InternalIP,Hostname",
		"--audit-policy-file="+auditPolicy,
		"--audit-log-path="+cp.AuditLogPath(),
		"--audit-log-format=json",
		"--profiling=false",
	)
	if err != nil {
		return nil, err
	}
	if err := waitHealthy(ctx, apiserver, cp.APIServerURL+"/readyz", cp.adminTransport, 2*time.Minute); err != nil {
		return nil, err
	}

	opts.Logf("starting kube-controller-manager and kube-scheduler")
	cmKubeconfig := filepath.Join(dir, "controller-manager.kubeconfig")
	cm, err := start("kube-controller-manager", bins.ControllerManager,
		"--kubeconfig="+cmKubeconfig,
		"--authentication-kubeconfig="+cmKubeconfig, "--authorization-kubeconfig="+cmKubeconfig,
		"--bind-address=127.0.0.1", "--secure-port="+strconv.Itoa(cmPort),
		"--controllers=*,bootstrapsigner,tokencleaner",
		"--cluster-name="+ClusterName,
		"--cluster-signing-cert-file="+pki.CACert, "--cluster-signing-key-file="+pki.CAKey,
		"--cluster-signing-duration="+opts.ClusterSigningDuration.String(),
		"--use-service-account-credentials",
		"--root-ca-file="+pki.CACert,
		"--service-account-private-key-file="+pki.ServiceAccountKey,
		"--leader-elect=false",
		"--profiling=false",
	)
	if err != nil {
		return nil, err
	}
	schedKubeconfig := filepath.Join(dir, "scheduler.kubeconfig")
	sched, err := start("kube-scheduler", bins.Scheduler,
		"--kubeconfig="+schedKubeconfig,
		"--authentication-kubeconfig="+schedKubeconfig, "--authorization-kubeconfig="+schedKubeconfig,
		"--bind-address=127.0.0.1", "--secure-port="+strconv.Itoa(schedPort),
		"--leader-elect=false",
		"--profiling=false",
	)
	if err != nil {
		return nil, err
	}
	if err := waitHealthy(ctx, cm, fmt.Sprintf("https://127.0.0.1:%d/healthz", cmPort), insecureTransport, time.Minute); err != nil {
		return nil, err
	}
	if err := waitHealthy(ctx, sched, fmt.Sprintf("https://127.0.0.1:%d/healthz", schedPort), insecureTransport, time.Minute); err != nil {
		return nil, err
	}

	opts.Logf("installing the bootstrap token, node RBAC and kube-public/cluster-info")
	client := cp.AdminClient()
	if cp.Token, err = CreateBootstrapToken(ctx, client, 24*time.Hour); err != nil {
		return nil, err
	}
	if err := installNodeBootstrap(ctx, client, cp.APIServerURL, pki.CACertPEM()); err != nil {
		return nil, err
	}
	if err := WaitForClusterInfoSignature(ctx, client, cp.Token, time.Minute); err != nil {
		return nil, err
	}
	if err := cp.writeState(); err != nil {
		return nil, err
	}
	opts.Logf("control plane ready at %s", cp.APIServerURL)
	return cp, nil
}

// AdminClient returns a cluster-admin clientset.
func (cp *ControlPlane) AdminClient() kubernetes.Interface {
	return kubernetes.NewForConfigOrDie(cp.AdminConfig())
}

// AdminConfig returns a copy of the cluster-admin client configuration.
func (cp *ControlPlane) AdminConfig() *rest.Config {
	return rest.CopyConfig(cp.admin)
}

// Stop ends every process of the control plane, API server first so that
// nothing writes while etcd goes. It is safe to call more than once.
func (cp *ControlPlane) Stop() error {
	var errs []error
	for i := len(cp.procs) - 1; i >= 0; i-- {
		if err := cp.procs[i].Stop(15 * time.Second); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// StopDir stops a detached control plane from its Dir (make down). It
// reports whether anything was running.
func StopDir(dir string) (bool, error) {
	st, err := readState(dir)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	cp := &ControlPlane{procs: st.Processes}
	running := cp.Running()
	return running, cp.Stop()
}

// Running reports whether any process of the control plane still runs.
func (cp *ControlPlane) Running() bool {
	for _, p := range cp.procs {
		if p.Alive() {
			return true
		}
	}
	return false
}

// Describe returns the state of a control plane left in dir by a detached
// Start, and whether all of its processes still run.
func Describe(dir string) (url, kubeconfig, token, caHash string, running bool, err error) {
	st, err := readState(dir)
	if err != nil {
		return "", "", "", "", false, err
	}
	running = len(st.Processes) > 0
	for _, p := range st.Processes {
		running = running && p.Alive()
	}
	return st.APIServerURL, st.AdminKubeconfig, st.Token, st.CAHash, running, nil
}

func (cp *ControlPlane) writeState() error {
	data, err := json.MarshalIndent(state{
		APIServerURL:    cp.APIServerURL,
		AdminKubeconfig: cp.AdminKubeconfig,
		Token:           cp.Token,
		CAHash:          cp.PKI.CAHash(),
		Processes:       cp.procs,
	}, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(cp.Dir, "state.json"), data, 0o600)
}

func readState(dir string) (*state, error) {
	data, err := os.ReadFile(filepath.Join(dir, "state.json"))
	if err != nil {
		return nil, err
	}
	st := &state{}
	if err := json.Unmarshal(data, st); err != nil {
		return nil, fmt.Errorf("reading %s: %w", filepath.Join(dir, "state.json"), err)
	}
	return st, nil
}

func (cp *ControlPlane) writeKubeconfig(path, certFile, keyFile string) error {
	cert, err := os.ReadFile(certFile)
	if err != nil {
		return err
	}
	key, err := os.ReadFile(keyFile)
	if err != nil {
		return err
	}
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters[ClusterName] = &clientcmdapi.Cluster{Server: cp.APIServerURL, CertificateAuthorityData: cp.PKI.CACertPEM()}
	cfg.AuthInfos["user"] = &clientcmdapi.AuthInfo{ClientCertificateData: cert, ClientKeyData: key}
	cfg.Contexts[ClusterName] = &clientcmdapi.Context{Cluster: ClusterName, AuthInfo: "user"}
	cfg.CurrentContext = ClusterName
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		return fmt.Errorf("writing kubeconfig %s: %w", path, err)
	}
	return os.Chmod(path, 0o600)
}

var insecureTransport = func() (http.RoundTripper, error) {
	// Health endpoints of loopback processes this package started itself.
	return &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}, nil //nolint:gosec
}

func (cp *ControlPlane) adminTransport() (http.RoundTripper, error) {
	return rest.TransportFor(cp.admin)
}

// waitHealthy polls url until it answers 200, failing early (with the end
// of its log) if the process exits.
func waitHealthy(ctx context.Context, p *Process, url string, transport func() (http.RoundTripper, error), timeout time.Duration) error {
	client := &http.Client{Timeout: 5 * time.Second}
	if transport != nil {
		rt, err := transport()
		if err != nil {
			return err
		}
		client.Transport = rt
	}
	var last string
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		if done, err := p.Exited(); done {
			return false, fmt.Errorf("%s exited (%v); end of %s:\n%s", p.Name, err, p.Log, Tail(p.Log, 20))
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return false, err
		}
		resp, err := client.Do(req)
		if err != nil {
			last = err.Error()
			return false, nil
		}
		resp.Body.Close()
		last = resp.Status
		return resp.StatusCode == http.StatusOK, nil
	})
	if err != nil {
		return fmt.Errorf("waiting for %s to be healthy at %s (last answer: %s): %w; end of %s:\n%s", p.Name, url, last, err, p.Log, Tail(p.Log, 20))
	}
	return nil
}

// Spawn starts one more process that belongs to the control plane's
// lifetime (a node agent, a registry, an approver): started the same way as
// the control plane's own processes, recorded in its state, stopped by Stop
// (or StopDir) before the control plane itself.
func (cp *ControlPlane) Spawn(name, bin string, args ...string) error {
	p, err := StartProcess(name, bin, args, filepath.Join(cp.Dir, "logs"), cp.detached)
	if err != nil {
		return err
	}
	cp.procs = append(cp.procs, p)
	return cp.writeState()
}

// auditPolicyYAML records every write with its user, so tests can count
// what a node writes.
const auditPolicyYAML = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
- level: Metadata
  verbs: ["create", "update", "patch", "delete", "deletecollection"]
- level: None
`

// AuditLogPath is the API server's audit log: one JSON event per write.
func (cp *ControlPlane) AuditLogPath() string {
	return filepath.Join(cp.Dir, "logs", "audit.log")
}

// StopProcess stops the process called name (e.g. "kube-apiserver"), for
// tests of what happens while it is away.
func (cp *ControlPlane) StopProcess(name string) error {
	for _, p := range cp.procs {
		if p.Name == name {
			return p.Stop(15 * time.Second)
		}
	}
	return fmt.Errorf("no process %q", name)
}

// StartProcess starts the process called name again with the arguments it
// had, after StopProcess.
func (cp *ControlPlane) StartProcess(name string) error {
	for i, p := range cp.procs {
		if p.Name == name {
			np, err := StartProcess(p.Name, p.Path, p.Args, filepath.Join(cp.Dir, "logs"), cp.detached)
			if err != nil {
				return err
			}
			cp.procs[i] = np
			return cp.writeState()
		}
	}
	return fmt.Errorf("no process %q", name)
}

// Track records a process started elsewhere (with the same Detach mode) as
// part of the control plane's lifetime, like Spawn does.
func (cp *ControlPlane) Track(p *Process) error {
	cp.procs = append(cp.procs, p)
	return cp.writeState()
}

// Detached reports whether the control plane outlives the process that
// started it.
func (cp *ControlPlane) Detached() bool { return cp.detached }

// LogPath is where the process called name writes its output.
func (cp *ControlPlane) LogPath(name string) string {
	return filepath.Join(cp.Dir, "logs", name+".log")
}
