// Package config owns the configuration of the krustlet node agent: the
// node flags, how they are read from the environment and from a kubelet
// config file, and the validated Config the rest of the agent is built from.
//
// # Precedence
//
// Every setting is resolved with one rule:
//
//	command-line flag > environment variable > config file (--config) > default
//
// A value from a higher layer replaces the whole value of a lower one (a
// map such as --node-labels or --eviction-hard is not merged across
// layers). The defaults are documented on the fields of Config.
//
// # Environment variables
//
// Every flag of the flag set, not only the node flags (klog's -v is read
// from KRUSTLET_V), is also read from the variable "KRUSTLET_" followed by
// the flag name in upper case with "-" replaced by "_": --node-name is
// KRUSTLET_NODE_NAME, --max-pods is KRUSTLET_MAX_PODS, --config is
// KRUSTLET_CONFIG. An empty variable counts as unset. Values use the flag
// syntax, for example KRUSTLET_NODE_LABELS=a=b,c=d.
//
// # Aliases
//
// krustlet's old flag names are deprecated aliases that share the value of
// the kubelet name: --bootstrap-file (--bootstrap-kubeconfig), --hostname
// (--hostname-override), --addr (--address), --cert-file (--tls-cert-file)
// and --private-key-file (--tls-private-key-file). They are hidden from the
// help, and each has its own variable (KRUSTLET_ADDR, ...). Setting a flag
// and its alias on the command line is an error, as is setting both
// variables to different values.
//
// # Config file
//
// --config names a kubelet.config.k8s.io/v1beta1 KubeletConfiguration in
// YAML or JSON, decoded strictly: an unknown or duplicate field, or another
// apiVersion or kind, is an error. The fields krustlet shares with the
// kubelet (address, port, maxPods, evictionHard, authentication, ...) map
// onto the flags; a zero or nil field is not set, as in the kubelet, except
// rotateCertificates and serverTLSBootstrap, which are set whenever present.
// A field that is set but means nothing to krustlet produces a warning.
// Relative paths in the file are relative to the file's directory.
//
// The settings the KubeletConfiguration has no field for are read from a
// second YAML document of kind KrustletConfiguration (apiVersion
// krustlet.dev/v1alpha1, the Go type KrustletConfiguration), decoded as
// strictly:
//
//	apiVersion: kubelet.config.k8s.io/v1beta1
//	kind: KubeletConfiguration
//	maxPods: 50
//	---
//	apiVersion: krustlet.dev/v1alpha1
//	kind: KrustletConfiguration
//	providers: [wasmtime, cri]        # --provider
//	runtimeHandlers: {fast: wasmtime} # --runtime-handlers
//
// Either document may be absent and they may come in any order; a document
// of another apiVersion or kind, or a second one of the same kind, is an
// error.
//
// # Providers and RuntimeClass handlers
//
// --provider lists the runtime providers enabled on the node, for example
// --provider=wasmtime,cri. The first is the default provider: it runs the
// pods that have no RuntimeClass. Every provider serves the RuntimeClass
// handler named after itself, and --runtime-handlers adds handlers with
// other names (--runtime-handlers=fast=wasmtime,runc=cri); an entry named
// after a provider replaces that provider's own handler. Config.Handlers
// returns the resulting handler -> provider map and Config.DefaultProvider
// the default provider. An empty or repeated provider name is an error, as
// is a handler that is not a DNS-1123 label (what RuntimeClass.handler
// accepts) or whose provider --provider does not list.
//
// # Settings
//
// Each setting is declared once, in the settings table (settings.go): its
// flag, deprecated aliases, help, default, config file field, how its value
// lands in Config and how it is validated. Its environment variable, the
// config file layer, validation and the flag reference (krustlet flags
// --markdown) follow from that entry, so adding a setting is adding a
// field to Config and an entry to the table.
//
// # Use
//
//	o := config.NewOptions()
//	config.AddFlags(cmd.Flags(), o)
//	// after cobra parsed the flags:
//	cfg, warnings, err := config.Load(cmd.Flags(), o)
//
// Validation reports every problem at once, each naming the flag, the bad
// value and what is accepted, for example:
//
//	invalid value "70000" for --port: must be between 1 and 65535
package config
