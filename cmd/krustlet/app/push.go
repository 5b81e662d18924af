package app

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/krustlet/krustlet-go/pkg/credentials"
	"github.com/krustlet/krustlet-go/pkg/provider"
	"github.com/krustlet/krustlet-go/pkg/registry"
)

const pushLong = `Push a WebAssembly module to an OCI registry, as wasm-to-oci did, so that pods
can name it in image:.

The module (a WASI preview 1 core module) is pushed as the CNCF TAG Runtime
Wasm artifact: a config of type application/vnd.wasm.config.v0+json with
architecture wasm and os wasip1, and the module as one layer of type
application/wasm. --layout wasm-to-oci writes the layout of wasm-to-oci and
krustlet instead. Nodes pull either.

Credentials come from --username and --password (or --password-stdin), or
from a Docker config.json (--registry-config), matched to the registry as the
kubelet matches pull secrets; without them the push is anonymous.`

const pushExample = `  # Push to a registry on this machine that speaks plain HTTP
  krustlet push app.wasm 127.0.0.1:5000/app:v1 --insecure

  # Push with credentials from a Docker config file
  krustlet push app.wasm registry.example.com/team/app:v1 --registry-config ~/.docker/config.json`

type pushOptions struct {
	insecure       bool
	username       string
	password       string
	passwordStdin  bool
	registryConfig string
	caFile         string
	layout         string
}

func newPushCommand() *cobra.Command {
	o := &pushOptions{layout: string(registry.LayoutCNCF)}
	cmd := &cobra.Command{
		Use:           "push FILE.wasm REFERENCE",
		Short:         "Push a WebAssembly module to an OCI registry",
		Long:          pushLong,
		Example:       pushExample,
		Args:          cobra.ExactArgs(2),
		SilenceErrors: true,
		SilenceUsage:  true,
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.run(cmd, args[0], args[1])
		},
	}
	f := cmd.Flags()
	f.BoolVar(&o.insecure, "insecure", false, "Talk to the registry over plain HTTP.")
	f.StringVarP(&o.username, "username", "u", "", "User name for the registry.")
	f.StringVarP(&o.password, "password", "p", "", "Password for the registry.")
	f.BoolVar(&o.passwordStdin, "password-stdin", false, "Read the password from standard input.")
	f.StringVar(&o.registryConfig, "registry-config", "", "Docker config.json with registry credentials.")
	f.StringVar(&o.caFile, "ca-file", "", "CA bundle (PEM) trusted for the registry, instead of the system roots.")
	f.StringVar(&o.layout, "layout", o.layout, "Artifact layout: cncf or wasm-to-oci.")
	return cmd
}

func (o *pushOptions) run(cmd *cobra.Command, file, ref string) error {
	var creds []provider.Credential
	switch {
	case (o.username != "" || o.password != "" || o.passwordStdin) && o.registryConfig != "":
		return errors.New("use either --username and --password, or --registry-config")
	case o.password != "" && o.passwordStdin:
		return errors.New("use either --password or --password-stdin")
	case o.registryConfig != "":
		c, err := credentials.ReadDockerConfigFile(o.registryConfig)
		if err != nil {
			return err
		}
		creds = c
	case o.username != "" || o.password != "" || o.passwordStdin:
		if o.passwordStdin {
			b, err := io.ReadAll(cmd.InOrStdin())
			if err != nil {
				return fmt.Errorf("reading the password: %w", err)
			}
			o.password = strings.TrimRight(string(b), "\r\n")
		}
		if o.username == "" || o.password == "" {
			return errors.New("--username and --password go together")
		}
		r, err := registry.ParseReference(ref)
		if err != nil {
			return err
		}
		creds = []provider.Credential{{Registry: r.Domain, Username: o.username, Password: o.password}}
	}
	module, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	transport, err := registry.NewTransport(o.caFile)
	if err != nil {
		return err
	}
	desc, r, err := registry.Push(cmd.Context(), module, ref, registry.PushOptions{
		Layout:      registry.Layout(o.layout),
		PlainHTTP:   o.insecure,
		Credentials: creds,
		Transport:   transport,
		Title:       filepath.Base(file),
	})
	if err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	_, err = fmt.Fprintf(cmd.OutOrStdout(), "Pushed %s\nDigest: %s\n", r, desc.Digest)
	return err
}
