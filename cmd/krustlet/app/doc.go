// Package app builds the krustlet command line: the root command that loads
// and validates the node configuration (package config) and hands it to a
// RunFunc, and the subcommands around it (join, which takes the command
// line kubeadm join takes, version, and the hidden flags command that
// prints the flag references for the README).
//
// The command does not start anything itself, so it can be tested in
// process and the node agent can be wired in by main:
//
//	cmd := app.NewKrustletCommand(func(ctx context.Context, cfg *config.Config) error {
//		return node.Run(ctx, cfg)
//	})
//	cmd.AddCommand(newJoinCommand()) // reuses config.AddFlags on its own flag set
//	err := cmd.ExecuteContext(ctx)
//
// It follows the kubelet's cmd/kubelet/app: cobra flags fill one config,
// validated once before Run.
package app
