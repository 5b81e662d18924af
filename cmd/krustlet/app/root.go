package app

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	utilerrors "k8s.io/apimachinery/pkg/util/errors"
	"k8s.io/klog/v2"

	"github.com/krustlet/krustlet-go/pkg/config"
)

// RunFunc runs the node agent with a validated configuration until ctx is
// cancelled.
type RunFunc func(ctx context.Context, cfg *config.Config) error

const long = `krustlet turns this machine into a Kubernetes node that runs pods as
WebAssembly modules.

It registers a Node with the cluster, keeps its status and lease up to date,
and runs the containers of the pods scheduled to it as WebAssembly modules
pulled from OCI registries, with a runtime provider such as wasmtime. Its
flags are the kubelet's wherever the two share a setting.

Every flag can also be set with an environment variable: KRUSTLET_ followed by
the flag name in upper case, with "-" replaced by "_" (--node-name is
KRUSTLET_NODE_NAME, -v is KRUSTLET_V). --config names a kubelet
KubeletConfiguration file (kubelet.config.k8s.io/v1beta1), which may also hold
a KrustletConfiguration document (krustlet.dev/v1alpha1) for --provider and
--runtime-handlers. A flag beats its environment variable, which beats the
config file, which beats the default.`

const example = `  # Join a cluster with a bootstrap kubeconfig
  krustlet --bootstrap-kubeconfig=/etc/krustlet/bootstrap.conf --node-name=wasm-1

  # The same, from the environment, with settings shared with kubelets
  KRUSTLET_BOOTSTRAP_KUBECONFIG=/etc/krustlet/bootstrap.conf \
    krustlet --config=/etc/kubernetes/kubelet-config.yaml`

// NewKrustletCommand returns the krustlet root command. Its RunE loads and
// validates the configuration from flags, environment and config file,
// logs the warnings, then calls run with the command's context.
func NewKrustletCommand(run RunFunc) *cobra.Command {
	opts := config.NewOptions()
	cmd := &cobra.Command{
		Use:     "krustlet",
		Short:   "Turn this machine into a Kubernetes node that runs pods as WebAssembly modules",
		Long:    long,
		Example: example,
		Args:    cobra.NoArgs,
		// main prints the error once; a usage dump would bury it.
		SilenceErrors: true,
		SilenceUsage:  true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(cmd, opts)
			if err != nil {
				return err
			}
			return run(cmd.Context(), cfg)
		},
	}
	cmd.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return fmt.Errorf("%w\nrun '%s --help' for usage", err, c.CommandPath())
	})
	config.AddFlags(cmd.Flags(), opts)
	addKlogFlags(cmd.PersistentFlags())

	cmd.AddCommand(newJoinCommand(run), newVersionCommand(), newFlagsCommand(), newPushCommand())
	return cmd
}

// loadConfig loads and validates the node configuration of cmd, logging
// the warnings.
func loadConfig(cmd *cobra.Command, opts *config.Options) (*config.Config, error) {
	cfg, warnings, err := config.Load(cmd.Flags(), opts)
	logger := klog.FromContext(cmd.Context())
	for _, w := range warnings {
		logger.Info("Configuration warning", "warning", w)
	}
	if err != nil {
		return nil, configError(err)
	}
	return cfg, nil
}

// addKlogFlags adds klog's -v and --vmodule, and no other klog flag.
func addKlogFlags(fs *pflag.FlagSet) {
	klogFlags := flag.NewFlagSet("klog", flag.ContinueOnError)
	klog.InitFlags(klogFlags)
	for _, name := range []string{"v", "vmodule"} {
		fs.AddGoFlag(klogFlags.Lookup(name))
	}
}

// configError lays out several configuration errors one per line.
func configError(err error) error {
	var agg utilerrors.Aggregate
	if !errors.As(err, &agg) || len(agg.Errors()) < 2 {
		return err
	}
	return problemList{agg}
}

type problemList struct{ utilerrors.Aggregate }

func (p problemList) Error() string {
	errs := p.Errors()
	lines := make([]string, len(errs))
	for i, e := range errs {
		lines[i] = "  " + e.Error()
	}
	return fmt.Sprintf("invalid configuration (%d problems):\n%s", len(errs), strings.Join(lines, "\n"))
}

func (p problemList) Unwrap() error { return p.Aggregate }
