package app

import (
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	bootstraputil "k8s.io/cluster-bootstrap/token/util"
	"k8s.io/klog/v2"

	"github.com/krustlet/krustlet-go/pkg/bootstrap"
	"github.com/krustlet/krustlet-go/pkg/config"
)

const joinLong = `Join a cluster as kubeadm join does, and start the node agent. The line
"kubeadm token create --print-join-command" prints works with krustlet in
place of kubeadm.

Discovery, having the node trust the control plane, takes one of two forms:

  - Token discovery: krustlet join HOST:PORT --discovery-token ID.SECRET
    --discovery-token-ca-cert-hash sha256:HEX. join reads kube-public/cluster-info
    from the API server at HOST:PORT (an IPv4 address, [IPv6] address or DNS
    name with its port; https://HOST:PORT works too) without credentials,
    checks the signature the cluster made over it with the token, and pins
    the cluster CA by its public-key hash. The hash may be repeated; without
    one, --discovery-token-unsafe-skip-ca-verification is required.
  - File discovery: krustlet join --discovery-file FILE, where FILE is a
    kubeconfig file, or an https:// URL serving one, that names the API
    server and its CA (kube-public/cluster-info holds such a file). join
    checks that the server answers over TLS verified with that CA.

TLS bootstrap, having the control plane trust the node, authenticates with
--tls-bootstrap-token ID.SECRET (or, in file discovery, with the file's own
credentials). --token ID.SECRET sets both tokens when the same one serves
both parts, as kubeadm token create makes them.

join then checks that the API server accepts the credentials, and writes a
bootstrap kubeconfig to <data-dir>/bootstrap-kubeconfig (or to
--bootstrap-kubeconfig). Then the node agent starts with it: it requests
its client certificate, registers the Node, and runs pods. With
--write-only, join stops after writing the file and prints how to start the
agent, e.g. under systemd. Nothing is written when a check fails; errors
read as kubeadm join's ("couldn't validate the identity of the API
Server: ...").

kubeadm join flags for what krustlet does not do are refused, naming the
flag: --control-plane, --certificate-key, --apiserver-advertise-address,
--apiserver-bind-port, --cri-socket, --ignore-preflight-errors,
--skip-phases, --dry-run and --patches. --config keeps krustlet's meaning: a
KubeletConfiguration file for the node agent (see krustlet --help), not a
kubeadm JoinConfiguration; join takes its own settings from flags only.
--server https://HOST:PORT is a deprecated way to give the endpoint.

Every node flag of krustlet applies (see krustlet --help).`

const joinExample = `  # The line kubeadm token create --print-join-command prints, with krustlet:
  krustlet join 10.0.0.1:6443 --token abcdef.0123456789abcdef \
    --discovery-token-ca-cert-hash sha256:0123…cdef --node-name wasm-1

  # File discovery with a kubeconfig holding the server and the cluster CA
  # (e.g. kubectl -n kube-public get cm cluster-info -o jsonpath='{.data.kubeconfig}'):
  krustlet join --discovery-file /etc/krustlet/cluster-info.yaml \
    --tls-bootstrap-token abcdef.0123456789abcdef --node-name wasm-1`

type joinOptions struct {
	// endpoint is the positional API server endpoint; server the
	// deprecated --server.
	endpoint, server string
	// token sets discoveryToken and tlsBootstrapToken when they are not
	// given, as kubeadm's --token does.
	token, discoveryToken, tlsBootstrapToken string
	caHashes                                 []string
	unsafeSkipCA                             bool
	discoveryFile                            string
	discoveryTimeout                         time.Duration
	writeOnly                                bool
}

// kubeadmOnlyFlags are the kubeadm join flags krustlet cannot honour, with
// why. They are registered hidden so that they parse (with their value)
// and then refused by name, never silently ignored.
var kubeadmOnlyFlags = []struct {
	name   string
	isBool bool
	why    string
}{
	{"control-plane", true, "krustlet joins worker nodes only; it cannot host a control plane instance"},
	{"certificate-key", false, "it decrypts the control-plane certificates of --control-plane, and krustlet joins worker nodes only"},
	{"apiserver-advertise-address", false, "it configures the API server of a new control plane instance (--control-plane), and krustlet joins worker nodes only"},
	{"apiserver-bind-port", false, "it configures the API server of a new control plane instance (--control-plane), and krustlet joins worker nodes only"},
	{"cri-socket", false, "krustlet runs pods with its own runtime providers (--provider), not through a CRI socket"},
	{"ignore-preflight-errors", false, "krustlet join runs no kubeadm preflight checks; every check it makes is needed to join"},
	{"skip-phases", false, "krustlet join has no kubeadm phases"},
	{"dry-run", true, "krustlet join has no dry-run mode (--write-only stops after writing the bootstrap kubeconfig)"},
	{"patches", false, "krustlet has no kubeadm component manifests or kubelet configuration to patch (node settings go in --config or flags)"},
}

func newJoinCommand(run RunFunc) *cobra.Command {
	opts := config.NewOptions()
	jo := &joinOptions{}
	cmd := &cobra.Command{
		Use:           "join [HOST:PORT] [--token ID.SECRET --discovery-token-ca-cert-hash sha256:HEX | --discovery-file FILE]",
		Short:         "Join a cluster as kubeadm join does and start the node agent",
		Long:          joinLong,
		Example:       joinExample,
		Args:          joinArgs,
		SilenceErrors: true,
		SilenceUsage:  true,
		RunE: func(cmd *cobra.Command, args []string) error {
			// Refused flags first, from the command line and then, once
			// loaded, from the environment.
			if err := refuseKubeadmOnlyFlags(cmd.Flags()); err != nil {
				return err
			}
			cfg, err := loadConfig(cmd, opts)
			if err != nil {
				return kubeadmConfigHint(cmd.Flags(), err)
			}
			if err := refuseKubeadmOnlyFlags(cmd.Flags()); err != nil {
				return err
			}
			if len(args) == 1 {
				jo.endpoint = args[0]
			}
			server, err := jo.validate()
			if err != nil {
				return err
			}
			path, err := jo.writeBootstrapKubeconfig(cmd, cfg, server)
			if err != nil {
				return err
			}
			cfg.BootstrapKubeconfig = path
			if jo.writeOnly {
				fmt.Fprintf(cmd.OutOrStdout(), "Wrote the bootstrap kubeconfig to %s.\nStart the node agent with:\n\n  krustlet --bootstrap-kubeconfig=%s --data-dir=%s --node-name=%s\n\n"+
					"(as ExecStart= of a systemd unit, with Restart=always). It requests its client certificate on first start and reuses it afterwards.\n",
					path, path, cfg.DataDir, cfg.NodeName)
				return nil
			}
			return run(cmd.Context(), cfg)
		},
	}
	// Flag errors are laid out by the root command's FlagErrorFunc.
	fs := cmd.Flags()
	fs.StringVar(&jo.token, "token", "", "Bootstrap token, ID.SECRET (kubeadm token create), for both --discovery-token and --tls-bootstrap-token when those are not given.")
	fs.StringVar(&jo.discoveryToken, "discovery-token", "", "Token discovery: the token whose signature over cluster-info is checked, ID.SECRET.")
	fs.StringVar(&jo.tlsBootstrapToken, "tls-bootstrap-token", "", "The token the node authenticates with until it has its client certificate, ID.SECRET.")
	fs.StringSliceVar(&jo.caHashes, "discovery-token-ca-cert-hash", nil, "Token discovery: pin of the cluster CA's public key, sha256:HEX; may be repeated.")
	fs.BoolVar(&jo.unsafeSkipCA, "discovery-token-unsafe-skip-ca-verification", false, "Token discovery: trust the CA named in cluster-info without a pin. Unsafe: anyone who can answer at the endpoint can impersonate the cluster.")
	fs.StringVar(&jo.discoveryFile, "discovery-file", "", "File discovery: a kubeconfig file, or an https:// URL serving one, naming the API server and its CA; instead of HOST:PORT.")
	fs.DurationVar(&jo.discoveryTimeout, "discovery-timeout", bootstrap.DefaultDiscoveryTimeout, "How long discovery waits for the API server to answer.")
	fs.BoolVar(&jo.writeOnly, "write-only", false, "Only write the bootstrap kubeconfig and print how to start the agent.")
	fs.StringVar(&jo.server, "server", "", "API server to join, https://HOST:PORT.")
	if err := fs.MarkDeprecated("server", "give the API server endpoint as the argument, HOST:PORT, as kubeadm join does"); err != nil {
		panic(err) // the flag was just defined
	}
	for _, f := range kubeadmOnlyFlags {
		if f.isBool {
			fs.Bool(f.name, false, "kubeadm join flag that krustlet refuses: "+f.why)
		} else {
			fs.String(f.name, "", "kubeadm join flag that krustlet refuses: "+f.why)
		}
		if err := fs.MarkHidden(f.name); err != nil {
			panic(err) // the flag was just defined
		}
	}
	config.AddFlags(fs, opts)
	if f := fs.Lookup("config"); f != nil {
		f.Usage += " For join too: it configures the node agent, and is not a kubeadm JoinConfiguration."
	}
	return cmd
}

// joinArgs accepts one API server endpoint, as kubeadm join does.
func joinArgs(_ *cobra.Command, args []string) error {
	if len(args) > 1 {
		return fmt.Errorf("join takes one API server endpoint, HOST:PORT, and got %d arguments: %s", len(args), strings.Join(args, " "))
	}
	return nil
}

// refuseKubeadmOnlyFlags names every kubeadm-only flag that was set.
func refuseKubeadmOnlyFlags(fs *pflag.FlagSet) error {
	var problems []string
	for _, k := range kubeadmOnlyFlags {
		f := fs.Lookup(k.name)
		if f.Changed || f.Value.String() != f.DefValue {
			problems = append(problems, fmt.Sprintf("--%s is a kubeadm join flag that krustlet join does not support: %s", k.name, k.why))
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("%s", strings.Join(problems, "\n"))
	}
	return nil
}

// kubeadmAPIVersion matches the apiVersion line of a kubeadm configuration.
var kubeadmAPIVersion = regexp.MustCompile(`(?m)^apiVersion:\s*["']?kubeadm\.k8s\.io/`)

// kubeadmConfigHint explains a --config (or KRUSTLET_CONFIG, which loading
// copied into the flag) that holds a kubeadm configuration, a
// JoinConfiguration most likely, which krustlet cannot read.
func kubeadmConfigHint(fs *pflag.FlagSet, err error) error {
	path := fs.Lookup("config").Value.String()
	if path == "" {
		return err
	}
	data, readErr := os.ReadFile(path)
	if readErr != nil || !kubeadmAPIVersion.Match(data) {
		return err
	}
	return fmt.Errorf("--config %s is a kubeadm configuration: krustlet join reads its --config as the node agent's KubeletConfiguration, "+
		"not as a kubeadm JoinConfiguration; give the join settings as flags (HOST:PORT, --token, --discovery-token-ca-cert-hash or --discovery-file)", path)
}

// validate checks the join flags together, as kubeadm's join validation
// does, and returns the API server URL of token discovery (empty for file
// discovery). Every problem is listed.
func (jo *joinOptions) validate() (string, error) {
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }

	if jo.discoveryToken == "" {
		jo.discoveryToken = jo.token
	}
	if jo.tlsBootstrapToken == "" {
		jo.tlsBootstrapToken = jo.token
	}
	for _, t := range []struct{ flag, value string }{{"token", jo.token}, {"discovery-token", jo.discoveryToken}, {"tls-bootstrap-token", jo.tlsBootstrapToken}} {
		if t.value != "" && !bootstraputil.IsValidBootstrapToken(t.value) {
			bad("invalid value for --%s: the bootstrap token is invalid: want ID.SECRET, [a-z0-9]{6}.[a-z0-9]{16}", t.flag)
		}
	}
	if jo.discoveryTimeout <= 0 {
		bad("invalid value %q for --discovery-timeout: must be positive", jo.discoveryTimeout)
	}

	endpoint, from := jo.endpoint, "the API server endpoint"
	switch {
	case jo.endpoint != "" && jo.server != "":
		bad("the API server endpoint is given twice, as the argument %q and as --server %q: give it once, as the argument", jo.endpoint, jo.server)
	case jo.server != "":
		endpoint, from = jo.server, "--server"
	}

	if jo.discoveryFile != "" {
		// File discovery: the file names the server.
		if endpoint != "" {
			bad("%s %q and --discovery-file cannot both be given: file discovery takes the API server from the file", from, endpoint)
		}
		for _, f := range []struct {
			flag string
			set  bool
		}{
			{"discovery-token", jo.discoveryToken != "" && jo.discoveryToken != jo.token},
			{"discovery-token-ca-cert-hash", len(jo.caHashes) > 0},
			{"discovery-token-unsafe-skip-ca-verification", jo.unsafeSkipCA},
		} {
			if f.set {
				bad("--%s is for token discovery and cannot be used with --discovery-file", f.flag)
			}
		}
		return "", problemsError(problems)
	}

	// Token discovery.
	var server string
	if endpoint == "" {
		bad("the API server endpoint is required: give HOST:PORT as the argument (as kubeadm join prints it; --server is deprecated), or --discovery-file")
	} else {
		var err error
		if server, err = serverURL(endpoint); err != nil {
			bad("invalid value %q for %s: %v", endpoint, from, err)
		}
	}
	switch {
	case jo.discoveryToken == "":
		bad("--token is required (or --discovery-token and --tls-bootstrap-token)")
	case jo.tlsBootstrapToken == "":
		bad("--tls-bootstrap-token is required with --discovery-token (or give --token for both)")
	}
	if len(jo.caHashes) == 0 && !jo.unsafeSkipCA {
		// kubeadm's ValidateDiscoveryBootstrapToken says: "using
		// token-based discovery without caCertHashes can be unsafe".
		bad("--discovery-token-ca-cert-hash is required: using token-based discovery without caCertHashes can be unsafe; pass --discovery-token-unsafe-skip-ca-verification to continue without")
	}
	for _, h := range jo.caHashes {
		if _, err := bootstrap.ParseCAHash(h); err != nil {
			bad("invalid value for --discovery-token-ca-cert-hash: %v", err)
		}
	}
	return server, problemsError(problems)
}

// problemsError lays out several problems one per line.
func problemsError(problems []string) error {
	if len(problems) == 0 {
		return nil
	}
	return fmt.Errorf("%s", strings.Join(problems, "\n"))
}

// serverURL turns the API server endpoint of kubeadm join, HOST:PORT
// (an IPv4 address, an [IPv6] address or a DNS name), into the https URL
// discovery uses. An https:// URL is accepted as well, as --server took it.
func serverURL(endpoint string) (string, error) {
	if strings.Contains(endpoint, "://") {
		u, err := url.Parse(endpoint)
		if err != nil {
			return "", err
		}
		if u.Scheme != "https" {
			return "", fmt.Errorf("the scheme must be https")
		}
		if u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
			return "", fmt.Errorf("want https://HOST:PORT, without a path, query or user")
		}
		host, port := u.Hostname(), u.Port()
		if err := checkHost(host); err != nil {
			return "", err
		}
		if port == "" {
			return "https://" + u.Host, nil
		}
		if err := checkPort(port); err != nil {
			return "", err
		}
		return "https://" + net.JoinHostPort(host, port), nil
	}
	host, port, err := net.SplitHostPort(endpoint)
	if err != nil {
		return "", fmt.Errorf("%v: want HOST:PORT, e.g. 10.0.0.1:6443, [fd00::1]:6443 or cp.example.com:6443", err)
	}
	if err := checkHost(host); err != nil {
		return "", err
	}
	if err := checkPort(port); err != nil {
		return "", err
	}
	return "https://" + net.JoinHostPort(host, port), nil
}

func checkHost(host string) error {
	if host == "" {
		return fmt.Errorf("no host: want HOST:PORT")
	}
	if strings.Contains(host, ":") || strings.Contains(host, "%") {
		addr, err := netip.ParseAddr(host)
		if err != nil {
			return fmt.Errorf("host %q is not an IP address", host)
		}
		if addr.Zone() != "" {
			return fmt.Errorf("host %q: IPv6 zones are not supported", host)
		}
		return nil
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return nil
	}
	if errs := validation.IsDNS1123Subdomain(strings.ToLower(host)); len(errs) > 0 {
		return fmt.Errorf("host %q is neither an IP address nor a DNS name: %s", host, strings.Join(errs, "; "))
	}
	return nil
}

func checkPort(port string) error {
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("port %q must be a number between 1 and 65535", port)
	}
	return nil
}

// writeBootstrapKubeconfig runs discovery, checks the credentials with the
// API server and only then writes the file, atomically.
func (jo *joinOptions) writeBootstrapKubeconfig(cmd *cobra.Command, cfg *config.Config, server string) (string, error) {
	ctx := cmd.Context()
	var (
		kubeconfig *clientcmdapi.Config
		err        error
	)
	if jo.discoveryFile != "" {
		kubeconfig, err = bootstrap.DiscoverFromFile(ctx, bootstrap.FileDiscoveryOptions{
			File:              jo.discoveryFile,
			TLSBootstrapToken: jo.tlsBootstrapToken,
			Timeout:           jo.discoveryTimeout,
		})
	} else {
		if jo.unsafeSkipCA && len(jo.caHashes) == 0 {
			klog.FromContext(ctx).Info("WARNING: --discovery-token-unsafe-skip-ca-verification: the cluster CA is not verified")
		}
		kubeconfig, err = bootstrap.Discover(ctx, bootstrap.DiscoveryOptions{
			Server:                   server,
			Token:                    jo.discoveryToken,
			TLSBootstrapToken:        jo.tlsBootstrapToken,
			CACertHashes:             jo.caHashes,
			UnsafeSkipCAVerification: jo.unsafeSkipCA,
			Timeout:                  jo.discoveryTimeout,
		})
	}
	if err != nil {
		return "", err
	}
	restConfig, err := clientcmd.NewDefaultClientConfig(*kubeconfig, nil).ClientConfig()
	if err != nil {
		return "", err
	}
	if err := bootstrap.CheckBootstrapCredentials(ctx, restConfig); err != nil {
		return "", err
	}
	path := cfg.BootstrapKubeconfig
	if path == "" {
		path = filepath.Join(cfg.DataDir, "bootstrap-kubeconfig")
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return "", err
	}
	data, err := clientcmd.Write(*kubeconfig)
	if err != nil {
		return "", err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return "", fmt.Errorf("writing bootstrap kubeconfig: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("writing bootstrap kubeconfig: %w", err)
	}
	return path, nil
}
