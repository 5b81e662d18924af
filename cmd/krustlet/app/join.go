package app

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"

	"github.com/krustlet/krustlet-go/pkg/bootstrap"
	"github.com/krustlet/krustlet-go/pkg/config"
)

const joinLong = `Join a cluster with a bootstrap token, as kubeadm join does, and start the
node agent.

join reads kube-public/cluster-info from the API server without credentials,
checks the signature the cluster made over it with the token, pins the cluster
CA by --discovery-token-ca-cert-hash, checks that the API server accepts the
token, and writes a bootstrap kubeconfig to <data-dir>/bootstrap-kubeconfig
(or to --bootstrap-kubeconfig). Then the node agent starts with it: it
requests its client certificate, registers the Node, and runs pods. With
--write-only, join stops after writing the file and prints how to start the
agent, e.g. under systemd. Nothing is written when a check fails.

Every node flag of krustlet applies (see krustlet --help).`

const joinExample = `  # The command kubeadm token create --print-join-command prints, with krustlet:
  krustlet join --server https://10.0.0.1:6443 --token abcdef.0123456789abcdef \
    --discovery-token-ca-cert-hash sha256:0123…cdef --node-name wasm-1`

type joinOptions struct {
	server, token string
	caHashes      []string
	unsafeSkipCA  bool
	writeOnly     bool
}

func newJoinCommand(run RunFunc) *cobra.Command {
	opts := config.NewOptions()
	jo := &joinOptions{}
	cmd := &cobra.Command{
		Use:           "join --server URL --token ID.SECRET --discovery-token-ca-cert-hash sha256:HEX",
		Short:         "Join a cluster with a bootstrap token and start the node agent",
		Long:          joinLong,
		Example:       joinExample,
		Args:          cobra.NoArgs,
		SilenceErrors: true,
		SilenceUsage:  true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(cmd, opts)
			if err != nil {
				return err
			}
			if err := jo.validate(); err != nil {
				return err
			}
			path, err := jo.writeBootstrapKubeconfig(cmd, cfg)
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
	fs.StringVar(&jo.server, "server", "", "API server to join, https://HOST:PORT.")
	fs.StringVar(&jo.token, "token", "", "Bootstrap token, ID.SECRET (kubeadm token create).")
	fs.StringSliceVar(&jo.caHashes, "discovery-token-ca-cert-hash", nil, "Pin of the cluster CA's public key, sha256:HEX; may be repeated.")
	fs.BoolVar(&jo.unsafeSkipCA, "discovery-token-unsafe-skip-ca-verification", false, "Trust the CA named in cluster-info without a pin. Unsafe: anyone who can answer at --server can impersonate the cluster.")
	fs.BoolVar(&jo.writeOnly, "write-only", false, "Only write the bootstrap kubeconfig and print how to start the agent.")
	config.AddFlags(fs, opts)
	return cmd
}

func (jo *joinOptions) validate() error {
	var problems []string
	if !strings.HasPrefix(jo.server, "https://") {
		problems = append(problems, fmt.Sprintf("invalid value %q for --server: must be an https:// URL", jo.server))
	}
	if jo.token == "" {
		problems = append(problems, "--token is required")
	}
	if len(jo.caHashes) == 0 && !jo.unsafeSkipCA {
		problems = append(problems, "--discovery-token-ca-cert-hash is required (or --discovery-token-unsafe-skip-ca-verification)")
	}
	if len(problems) > 0 {
		return fmt.Errorf("%s", strings.Join(problems, "\n"))
	}
	return nil
}

// writeBootstrapKubeconfig runs discovery, checks the token with the API
// server and only then writes the file, atomically.
func (jo *joinOptions) writeBootstrapKubeconfig(cmd *cobra.Command, cfg *config.Config) (string, error) {
	ctx := cmd.Context()
	if jo.unsafeSkipCA && len(jo.caHashes) == 0 {
		klog.FromContext(ctx).Info("WARNING: --discovery-token-unsafe-skip-ca-verification: the cluster CA is not verified")
	}
	kubeconfig, err := bootstrap.Discover(ctx, bootstrap.DiscoveryOptions{
		Server:                   jo.server,
		Token:                    jo.token,
		CACertHashes:             jo.caHashes,
		UnsafeSkipCAVerification: jo.unsafeSkipCA,
	})
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
