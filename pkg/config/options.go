package config

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/spf13/pflag"
	v1 "k8s.io/api/core/v1"
	cliflag "k8s.io/component-base/cli/flag"
)

// Flag annotations that carry krustlet's metadata on a pflag.Flag, so that
// the flag set alone describes aliases and documented defaults.
const (
	// annotationAliasOf marks a flag as an alias; the value is the
	// canonical flag name.
	annotationAliasOf = "krustlet.dev/alias-of"
	// annotationDefault documents a default that is computed at load time
	// and so cannot be the flag's DefValue.
	annotationDefault = "krustlet.dev/default"
)

// EnvPrefix starts the name of every environment variable that sets a flag.
const EnvPrefix = "KRUSTLET_"

// Options holds the node flags as given on the command line, bound by
// AddFlags. Load layers the environment and the config file under them and
// turns them into a Config. Build it with NewOptions, which sets the
// defaults.
type Options struct {
	ConfigFile string

	Kubeconfig          string
	BootstrapKubeconfig string
	NodeName            string
	HostnameOverride    string
	NodeIP              string

	Address            string
	Port               int32
	HealthzPort        int32
	HealthzBindAddress string

	DataDir                    string
	CertDir                    string
	TLSCertFile                string
	TLSPrivateKeyFile          string
	ClientCAFile               string
	AnonymousAuth              bool
	AuthenticationTokenWebhook bool
	AuthorizationMode          string
	EnableDebuggingHandlers    bool

	MaxPods            int32
	NodeLabels         map[string]string
	RegisterWithTaints []v1.Taint
	RegisterNode       bool

	Provider           string
	InsecureRegistries []string
	RegistryConfig     string
	RegistryCAFile     string
	AllowLocalModules  bool

	RotateCertificates       bool
	RotateServerCertificates bool

	SystemReserved              map[string]string
	KubeReserved                map[string]string
	EvictionHard                map[string]string
	ImageGCHighThresholdPercent int32
	ImageGCLowThresholdPercent  int32
	ContainerLogMaxSize         string
	ContainerLogMaxFiles        int32

	KubeAPIQPS                int32
	KubeAPIBurst              int32
	NodeStatusUpdateFrequency time.Duration
	NodeStatusReportFrequency time.Duration
	NodeLeaseDurationSeconds  int32

	DrainOnShutdown     bool
	ShutdownGracePeriod time.Duration
}

// NewOptions returns Options holding the defaults.
func NewOptions() *Options {
	return &Options{
		Address:                     DefaultAddress,
		Port:                        DefaultPort,
		HealthzPort:                 DefaultHealthzPort,
		HealthzBindAddress:          DefaultHealthzBindAddress,
		DataDir:                     DefaultDataDir,
		AuthenticationTokenWebhook:  true,
		AuthorizationMode:           string(AuthorizationModeWebhook),
		EnableDebuggingHandlers:     true,
		MaxPods:                     DefaultMaxPods,
		RegisterNode:                true,
		Provider:                    DefaultProvider,
		RotateCertificates:          true,
		RotateServerCertificates:    true,
		EvictionHard:                DefaultEvictionHard(),
		ImageGCHighThresholdPercent: DefaultImageGCHighThreshold,
		ImageGCLowThresholdPercent:  DefaultImageGCLowThreshold,
		ContainerLogMaxSize:         DefaultContainerLogMaxSize,
		ContainerLogMaxFiles:        DefaultContainerLogMaxFiles,
		KubeAPIQPS:                  DefaultKubeAPIQPS,
		KubeAPIBurst:                DefaultKubeAPIBurst,
		NodeStatusUpdateFrequency:   DefaultNodeStatusUpdateFrequency,
		NodeStatusReportFrequency:   DefaultNodeStatusReportFrequency,
		NodeLeaseDurationSeconds:    DefaultNodeLeaseDurationSeconds,
		ShutdownGracePeriod:         DefaultShutdownGracePeriod,
	}
}

// AddFlags binds the node flags, and krustlet's old names for some of them,
// to o on fs. It can be called on any command's flag set, so that every
// command that starts a node shares the same flags.
func AddFlags(fs *pflag.FlagSet, o *Options) {
	fs.StringVar(&o.ConfigFile, "config", o.ConfigFile, "Path to a kubelet.config.k8s.io/v1beta1 KubeletConfiguration file (YAML or JSON). Flags and KRUSTLET_* environment variables override its values; relative paths in it are relative to its directory.")

	fs.StringVar(&o.Kubeconfig, "kubeconfig", o.Kubeconfig, "Path to the kubeconfig used to talk to the API server. Defaults to <data-dir>/kubeconfig.")
	setDefaultDoc(fs, "kubeconfig", "<data-dir>/kubeconfig")
	fs.StringVar(&o.BootstrapKubeconfig, "bootstrap-kubeconfig", o.BootstrapKubeconfig, "Path to a kubeconfig used to request a client certificate when --kubeconfig does not exist yet.")
	addAlias(fs, "bootstrap-kubeconfig", "bootstrap-file")
	fs.StringVar(&o.NodeName, "node-name", o.NodeName, "Name of the Node object. Defaults to --hostname-override, or the lowercased host name.")
	setDefaultDoc(fs, "node-name", "<hostname>")
	fs.StringVar(&o.HostnameOverride, "hostname-override", o.HostnameOverride, "Host name to report instead of the machine's.")
	addAlias(fs, "hostname-override", "hostname")
	fs.StringVar(&o.NodeIP, "node-ip", o.NodeIP, "Comma-separated IP addresses of the node, at most one IPv4 and one IPv6. Detected when empty.")

	fs.StringVar(&o.Address, "address", o.Address, "IP address the node server listens on.")
	addAlias(fs, "address", "addr")
	fs.Int32Var(&o.Port, "port", o.Port, "Port of the node server.")
	fs.Int32Var(&o.HealthzPort, "healthz-port", o.HealthzPort, "Port of the healthz endpoint; 0 disables it.")
	fs.StringVar(&o.HealthzBindAddress, "healthz-bind-address", o.HealthzBindAddress, "IP address the healthz endpoint listens on.")

	fs.StringVar(&o.DataDir, "data-dir", o.DataDir, "Directory of the node agent's state.")
	fs.StringVar(&o.CertDir, "cert-dir", o.CertDir, "Directory of the node's certificates. Defaults to <data-dir>/pki.")
	setDefaultDoc(fs, "cert-dir", "<data-dir>/pki")
	fs.StringVar(&o.TLSCertFile, "tls-cert-file", o.TLSCertFile, "Serving certificate (PEM) of the node server; requires --tls-private-key-file. When unset, the serving certificate is requested from the cluster (--rotate-server-certificates) or self-signed.")
	addAlias(fs, "tls-cert-file", "cert-file")
	fs.StringVar(&o.TLSPrivateKeyFile, "tls-private-key-file", o.TLSPrivateKeyFile, "Private key (PEM) of --tls-cert-file.")
	addAlias(fs, "tls-private-key-file", "private-key-file")
	fs.StringVar(&o.ClientCAFile, "client-ca-file", o.ClientCAFile, "CA bundle (PEM) that authenticates client certificates.")
	fs.BoolVar(&o.AnonymousAuth, "anonymous-auth", o.AnonymousAuth, "Allow unauthenticated requests to the node server.")
	fs.BoolVar(&o.AuthenticationTokenWebhook, "authentication-token-webhook", o.AuthenticationTokenWebhook, "Authenticate bearer tokens with the TokenReview API.")
	fs.StringVar(&o.AuthorizationMode, "authorization-mode", o.AuthorizationMode, "Authorization of node server requests: Webhook (SubjectAccessReview) or AlwaysAllow.")
	fs.BoolVar(&o.EnableDebuggingHandlers, "enable-debugging-handlers", o.EnableDebuggingHandlers, "Serve container logs and /debug/pprof on the node server.")

	fs.Int32Var(&o.MaxPods, "max-pods", o.MaxPods, "Number of pods the node accepts.")
	fs.Var(cliflag.NewMapStringString(&o.NodeLabels), "node-labels", "Labels added to the Node when it registers (key=value,...). Labels in the kubernetes.io and k8s.io namespaces are limited to the kubelet's allowed set.")
	fs.Var(&taintsValue{taints: &o.RegisterWithTaints}, "register-with-taints", "Taints added to the Node when it registers (key=value:Effect or key:Effect, comma-separated).")
	fs.BoolVar(&o.RegisterNode, "register-node", o.RegisterNode, "Create the Node object.")

	fs.StringVar(&o.Provider, "provider", o.Provider, "Runtime provider that runs the pods' WebAssembly modules.")
	fs.StringSliceVar(&o.InsecureRegistries, "insecure-registries", o.InsecureRegistries, "Registries (host[:port], comma-separated) reached over plain HTTP.")
	fs.StringVar(&o.RegistryConfig, "registry-config", o.RegistryConfig, "Docker config.json with registry credentials.")
	fs.StringVar(&o.RegistryCAFile, "registry-ca-file", o.RegistryCAFile, "CA bundle (PEM) trusted for registries, in addition to the system roots.")
	fs.BoolVar(&o.AllowLocalModules, "x-allow-local-modules", o.AllowLocalModules, "Experimental: let pods use modules from the local file system.")

	fs.BoolVar(&o.RotateCertificates, "rotate-certificates", o.RotateCertificates, "Renew the client certificate before it expires.")
	fs.BoolVar(&o.RotateServerCertificates, "rotate-server-certificates", o.RotateServerCertificates, "Request and renew the serving certificate from the cluster.")

	fs.Var(cliflag.NewMapStringString(&o.SystemReserved), "system-reserved", "Resources withheld for the system (e.g. cpu=100m,memory=256Mi,ephemeral-storage=1Gi).")
	fs.Var(cliflag.NewMapStringString(&o.KubeReserved), "kube-reserved", "Resources withheld for Kubernetes components (e.g. cpu=100m,memory=256Mi,ephemeral-storage=1Gi).")
	fs.Var(cliflag.NewLangleSeparatedMapStringString(&o.EvictionHard), "eviction-hard", "Hard eviction thresholds (signal<quantity or signal<percent%, comma-separated). Replaces the defaults.")
	fs.Int32Var(&o.ImageGCHighThresholdPercent, "image-gc-high-threshold", o.ImageGCHighThresholdPercent, "Disk usage percent that starts image garbage collection.")
	fs.Int32Var(&o.ImageGCLowThresholdPercent, "image-gc-low-threshold", o.ImageGCLowThresholdPercent, "Disk usage percent image garbage collection frees down to.")
	fs.StringVar(&o.ContainerLogMaxSize, "container-log-max-size", o.ContainerLogMaxSize, "Size (quantity) at which a container log is rotated.")
	fs.Int32Var(&o.ContainerLogMaxFiles, "container-log-max-files", o.ContainerLogMaxFiles, "Number of log files kept per container.")

	fs.Int32Var(&o.KubeAPIQPS, "kube-api-qps", o.KubeAPIQPS, "Queries per second to the API server.")
	fs.Int32Var(&o.KubeAPIBurst, "kube-api-burst", o.KubeAPIBurst, "Burst of queries to the API server.")
	fs.DurationVar(&o.NodeStatusUpdateFrequency, "node-status-update-frequency", o.NodeStatusUpdateFrequency, "How often the node status is computed.")
	fs.DurationVar(&o.NodeStatusReportFrequency, "node-status-report-frequency", o.NodeStatusReportFrequency, "How often an unchanged node status is still written.")
	fs.Int32Var(&o.NodeLeaseDurationSeconds, "node-lease-duration-seconds", o.NodeLeaseDurationSeconds, "Duration of the node Lease in seconds.")

	fs.BoolVar(&o.DrainOnShutdown, "drain-on-shutdown", o.DrainOnShutdown, "Evict the node's pods when the agent stops.")
	fs.DurationVar(&o.ShutdownGracePeriod, "shutdown-grace-period", o.ShutdownGracePeriod, "Time given to pods to stop when the agent shuts down.")
}

// EnvVarName returns the environment variable that sets the flag name:
// EnvPrefix followed by the name in upper case with "-" replaced by "_".
func EnvVarName(name string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// addAlias registers alias as a deprecated, hidden flag that shares the
// value of canonical, so both behave identically.
func addAlias(fs *pflag.FlagSet, canonical, alias string) {
	f := fs.Lookup(canonical)
	if f == nil {
		panic(fmt.Sprintf("alias --%s of undefined flag --%s", alias, canonical))
	}
	fs.AddFlag(&pflag.Flag{
		Name:        alias,
		Usage:       fmt.Sprintf("Deprecated alias of --%s.", canonical),
		Value:       f.Value,
		DefValue:    f.DefValue,
		NoOptDefVal: f.NoOptDefVal,
		Deprecated:  fmt.Sprintf("use --%s instead", canonical),
		Hidden:      true,
		Annotations: map[string][]string{annotationAliasOf: {canonical}},
	})
	f.Usage += fmt.Sprintf(" Alias: --%s (deprecated).", alias)
}

func setDefaultDoc(fs *pflag.FlagSet, name, doc string) {
	if err := fs.SetAnnotation(name, annotationDefault, []string{doc}); err != nil {
		panic(err) // only when name is not defined: a programming error
	}
}

// aliasOf returns the canonical name of an alias flag.
func aliasOf(f *pflag.Flag) (string, bool) {
	v := f.Annotations[annotationAliasOf]
	if len(v) != 1 {
		return "", false
	}
	return v[0], true
}

// aliasesOf returns the aliases of the flag name in fs, sorted.
func aliasesOf(fs *pflag.FlagSet, name string) []string {
	var out []string
	fs.VisitAll(func(f *pflag.Flag) {
		if c, ok := aliasOf(f); ok && c == name {
			out = append(out, f.Name)
		}
	})
	sort.Strings(out)
	return out
}

// FlagDoc describes one flag for generated documentation.
type FlagDoc struct {
	// Name is the canonical name, without dashes.
	Name string
	// Shorthand is the one-letter name, if any.
	Shorthand string
	// Aliases are the deprecated old names.
	Aliases []string
	// EnvVars are the variables that set the flag: the canonical one first,
	// then one per alias.
	EnvVars []string
	// Default is the default value as a user would write it; empty if none.
	Default string
	// Usage is the help text.
	Usage string
}

// FlagDocs describes every visible flag of fs (aliases are folded into the
// flag they alias), sorted by name.
func FlagDocs(fs *pflag.FlagSet) []FlagDoc {
	var docs []FlagDoc
	fs.VisitAll(func(f *pflag.Flag) {
		if _, ok := aliasOf(f); ok || f.Hidden || f.Name == "help" {
			return
		}
		d := FlagDoc{
			Name:      f.Name,
			Shorthand: f.Shorthand,
			Aliases:   aliasesOf(fs, f.Name),
			EnvVars:   []string{EnvVarName(f.Name)},
			Default:   f.DefValue,
			Usage:     f.Usage,
		}
		for _, a := range d.Aliases {
			d.EnvVars = append(d.EnvVars, EnvVarName(a))
		}
		if v := f.Annotations[annotationDefault]; len(v) == 1 {
			d.Default = v[0]
		}
		if d.Default == "[]" {
			d.Default = ""
		}
		docs = append(docs, d)
	})
	sort.Slice(docs, func(i, j int) bool { return docs[i].Name < docs[j].Name })
	return docs
}

// taintsValue parses --register-with-taints. The first Set replaces the
// default; later ones append, as repeated flags do in the kubelet.
type taintsValue struct {
	taints *[]v1.Taint
	set    bool
}

var _ pflag.Value = (*taintsValue)(nil)

func (t *taintsValue) String() string {
	if t.taints == nil {
		return ""
	}
	parts := make([]string, 0, len(*t.taints))
	for _, taint := range *t.taints {
		parts = append(parts, taint.ToString())
	}
	return strings.Join(parts, ",")
}

func (t *taintsValue) Set(value string) error {
	parsed, err := parseTaints(value)
	if err != nil {
		return err
	}
	if !t.set {
		*t.taints = nil
		t.set = true
	}
	*t.taints = append(*t.taints, parsed...)
	return nil
}

func (t *taintsValue) Type() string { return "taints" }

// parseTaints parses "key=value:Effect" and "key:Effect" specs separated by
// commas. Keys, values and effects are checked by Validate.
func parseTaints(value string) ([]v1.Taint, error) {
	var out []v1.Taint
	for _, spec := range strings.Split(value, ",") {
		spec = strings.TrimSpace(spec)
		if spec == "" {
			continue
		}
		i := strings.LastIndex(spec, ":")
		if i < 0 {
			return nil, fmt.Errorf("taint %q has no effect, want key=value:Effect or key:Effect", spec)
		}
		kv, effect := spec[:i], spec[i+1:]
		key, val, _ := strings.Cut(kv, "=")
		out = append(out, v1.Taint{Key: key, Value: val, Effect: v1.TaintEffect(effect)})
	}
	return out, nil
}
