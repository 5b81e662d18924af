package config

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/spf13/pflag"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	utilerrors "k8s.io/apimachinery/pkg/util/errors"
)

// LookupEnvFunc looks up an environment variable, as os.LookupEnv does.
type LookupEnvFunc func(key string) (string, bool)

// Loader turns parsed flags into a Config. Its zero value reads the process
// environment and the machine's host name; tests replace both.
type Loader struct {
	// LookupEnv reads environment variables; nil means os.LookupEnv.
	LookupEnv LookupEnvFunc
	// Hostname returns the machine's host name; nil means os.Hostname.
	Hostname func() (string, error)
}

// Load is Loader{}.Load: it reads the process environment.
func Load(fs *pflag.FlagSet, o *Options) (*Config, []string, error) {
	return Loader{}.Load(fs, o)
}

// Load resolves every flag of fs with the rule flag > environment > config
// file > default, completes o into a Config and validates it. fs must be
// parsed and hold the flags AddFlags bound to o; flags of fs that are not
// node flags (for example klog's -v) get the environment layer too.
//
// Load writes the values it takes from the environment and the config file
// into o, so o must not be shared between loads.
//
// Warnings describe settings that were accepted but have no effect, such as
// config file fields krustlet does not use or deprecated aliases; the
// caller logs them. The error aggregates every problem found.
func (l Loader) Load(fs *pflag.FlagSet, o *Options) (*Config, []string, error) {
	lookup := l.LookupEnv
	if lookup == nil {
		lookup = os.LookupEnv
	}
	var (
		warnings []string
		errs     []error
		// explicit holds the canonical names of flags set on the command
		// line or in the environment: the file does not override them.
		explicit = map[string]bool{}
		// sources says where a value came from when that was not the
		// canonical flag; error messages name it.
		sources = map[string]string{}
	)

	// Layer 1: the command line, which the caller already parsed into o.
	given := map[string][]string{}
	fs.VisitAll(func(f *pflag.Flag) {
		if !f.Changed {
			return
		}
		name := f.Name
		if c, ok := aliasOf(f); ok {
			name = c
			sources[c] = "--" + f.Name
		}
		given[name] = append(given[name], "--"+f.Name)
		explicit[name] = true
	})
	for _, name := range sortedKeys(given) {
		if used := given[name]; len(used) > 1 {
			errs = append(errs, fmt.Errorf("flags %s are the same setting: use only --%s", strings.Join(used, " and "), name))
		}
	}

	// Layer 2: the environment, for flags not given on the command line.
	fs.VisitAll(func(f *pflag.Flag) {
		if _, ok := aliasOf(f); ok || f.Name == "help" || explicit[f.Name] {
			return
		}
		var value, from string
		for _, name := range append([]string{f.Name}, aliasesOf(fs, f.Name)...) {
			env := EnvVarName(name)
			v, ok := lookup(env)
			if !ok || v == "" {
				continue
			}
			if from != "" && v != value {
				errs = append(errs, fmt.Errorf("environment variables %s=%q and %s=%q both set --%s with different values: set only %s", from, value, env, v, f.Name, EnvVarName(f.Name)))
				return
			}
			if from == "" {
				value, from = v, env
				if name != f.Name {
					warnings = append(warnings, fmt.Sprintf("%s is deprecated, use %s instead", env, EnvVarName(f.Name)))
				}
			}
		}
		if from == "" {
			return
		}
		if err := f.Value.Set(value); err != nil {
			errs = append(errs, fmt.Errorf("invalid value %q for --%s (from %s): %w", value, f.Name, from, err))
			return
		}
		explicit[f.Name] = true
		sources[f.Name] = from
	})

	// Layer 3: the config file, for fields neither flags nor the
	// environment set.
	if o.ConfigFile != "" {
		kc, present, err := readConfigFile(o.ConfigFile)
		if err != nil {
			return nil, warnings, utilerrors.NewAggregate(append(errs, err))
		}
		warnings = append(warnings, unusedFieldWarnings(kc)...)
		for _, fv := range fileValues(kc, filepath.Dir(o.ConfigFile), present) {
			if !fv.set || explicit[fv.flag] {
				continue
			}
			fv.apply(o)
			sources[fv.flag] = fmt.Sprintf("config file field %q", fv.field)
		}
	}

	// Layer 4, the defaults, is already in o: NewOptions set them.
	el := &errorList{sources: sources, skip: map[string]bool{}}
	cfg := l.complete(o, el)
	cfg.validate(el)
	if err := utilerrors.NewAggregate(append(errs, el.errs...)); err != nil {
		return nil, warnings, err
	}
	return cfg, warnings, nil
}

// complete turns o into a Config, parsing what has a type. A flag that fails
// to parse is reported once and skipped by validate.
func (l Loader) complete(o *Options, el *errorList) *Config {
	c := &Config{
		ConfigFile:                  o.ConfigFile,
		Kubeconfig:                  o.Kubeconfig,
		BootstrapKubeconfig:         o.BootstrapKubeconfig,
		NodeName:                    o.NodeName,
		Port:                        o.Port,
		HealthzPort:                 o.HealthzPort,
		DataDir:                     o.DataDir,
		CertDir:                     o.CertDir,
		TLSCertFile:                 o.TLSCertFile,
		TLSPrivateKeyFile:           o.TLSPrivateKeyFile,
		ClientCAFile:                o.ClientCAFile,
		AnonymousAuth:               o.AnonymousAuth,
		AuthenticationTokenWebhook:  o.AuthenticationTokenWebhook,
		AuthorizationMode:           AuthorizationMode(o.AuthorizationMode),
		EnableDebuggingHandlers:     o.EnableDebuggingHandlers,
		MaxPods:                     o.MaxPods,
		RegisterNode:                o.RegisterNode,
		Provider:                    o.Provider,
		RegistryConfig:              o.RegistryConfig,
		RegistryCAFile:              o.RegistryCAFile,
		AllowLocalModules:           o.AllowLocalModules,
		RotateCertificates:          o.RotateCertificates,
		RotateServerCertificates:    o.RotateServerCertificates,
		ImageGCHighThresholdPercent: o.ImageGCHighThresholdPercent,
		ImageGCLowThresholdPercent:  o.ImageGCLowThresholdPercent,
		ContainerLogMaxFiles:        o.ContainerLogMaxFiles,
		KubeAPIQPS:                  o.KubeAPIQPS,
		KubeAPIBurst:                o.KubeAPIBurst,
		NodeStatusUpdateFrequency:   o.NodeStatusUpdateFrequency,
		NodeStatusReportFrequency:   o.NodeStatusReportFrequency,
		NodeLeaseDurationSeconds:    o.NodeLeaseDurationSeconds,
		DrainOnShutdown:             o.DrainOnShutdown,
		ShutdownGracePeriod:         o.ShutdownGracePeriod,
		sources:                     el.sources,
	}

	if c.Kubeconfig == "" {
		c.Kubeconfig = filepath.Join(c.DataDir, "kubeconfig")
	}
	if c.CertDir == "" {
		c.CertDir = filepath.Join(c.DataDir, "pki")
	}

	c.Hostname = strings.ToLower(strings.TrimSpace(o.HostnameOverride))
	if c.Hostname == "" {
		hostname := l.Hostname
		if hostname == nil {
			hostname = os.Hostname
		}
		h, err := hostname()
		if err != nil {
			el.add(fmt.Errorf("detecting the host name (set --hostname-override or --node-name): %w", err))
		}
		c.Hostname = strings.ToLower(strings.TrimSpace(h))
		if c.Hostname == "" && err == nil {
			el.add(fmt.Errorf("the host name is empty: set --hostname-override or --node-name"))
		}
	}
	if c.NodeName == "" {
		c.NodeName = c.Hostname
		if _, ok := el.sources["node-name"]; !ok {
			if o.HostnameOverride != "" {
				el.sources["node-name"] = "derived from --hostname-override"
			} else {
				el.sources["node-name"] = "derived from the host name"
			}
		}
	}

	if o.NodeIP != "" {
		for _, s := range strings.Split(o.NodeIP, ",") {
			ip := net.ParseIP(strings.TrimSpace(s))
			if ip == nil {
				el.invalid("node-ip", o.NodeIP, fmt.Sprintf("%q is not an IP address; want a comma-separated list of at most one IPv4 and one IPv6 address", strings.TrimSpace(s)))
				el.skip["node-ip"] = true
				c.NodeIPs = nil
				break
			}
			c.NodeIPs = append(c.NodeIPs, ip)
		}
	}
	c.Address = parseIP(el, "address", o.Address)
	c.HealthzBindAddress = parseIP(el, "healthz-bind-address", o.HealthzBindAddress)

	if len(o.NodeLabels) > 0 {
		c.NodeLabels = make(map[string]string, len(o.NodeLabels))
		for k, v := range o.NodeLabels {
			c.NodeLabels[k] = v
		}
	}
	c.RegisterWithTaints = append([]v1.Taint(nil), o.RegisterWithTaints...)
	if len(c.RegisterWithTaints) == 0 {
		c.RegisterWithTaints = nil
	}
	for _, r := range o.InsecureRegistries {
		if r = strings.TrimSpace(r); r != "" {
			c.InsecureRegistries = append(c.InsecureRegistries, r)
		}
	}

	c.SystemReserved = parseResourceList(el, "system-reserved", o.SystemReserved)
	c.KubeReserved = parseResourceList(el, "kube-reserved", o.KubeReserved)
	c.EvictionHard = parseEvictionHard(el, o.EvictionHard)

	q, err := resource.ParseQuantity(o.ContainerLogMaxSize)
	if err != nil {
		el.invalid("container-log-max-size", o.ContainerLogMaxSize, "must be a quantity such as 10Mi")
		el.skip["container-log-max-size"] = true
	}
	c.ContainerLogMaxSize = q
	return c
}

func parseIP(el *errorList, flag, value string) net.IP {
	ip := net.ParseIP(value)
	if ip == nil {
		el.invalid(flag, value, "must be an IP address")
		el.skip[flag] = true
	}
	return ip
}

func parseResourceList(el *errorList, flag string, m map[string]string) v1.ResourceList {
	if len(m) == 0 {
		return nil
	}
	out := make(v1.ResourceList, len(m))
	for _, k := range sortedKeys(m) {
		q, err := resource.ParseQuantity(m[k])
		if err != nil {
			el.invalid(flag, k+"="+m[k], fmt.Sprintf("%q is not a quantity such as 100m or 256Mi", m[k]))
			el.skip[flag] = true
			continue
		}
		out[v1.ResourceName(k)] = q
	}
	return out
}

func parseEvictionHard(el *errorList, m map[string]string) []EvictionThreshold {
	var out []EvictionThreshold
	for _, k := range sortedKeys(m) {
		v := m[k]
		t := EvictionThreshold{Signal: EvictionSignal(k)}
		if p, ok := strings.CutSuffix(v, "%"); ok {
			f, err := strconv.ParseFloat(p, 32)
			if err != nil {
				el.invalid("eviction-hard", k+"<"+v, fmt.Sprintf("%q is not a percentage", v))
				el.skip["eviction-hard"] = true
				continue
			}
			t.Percentage = float32(f / 100)
		} else {
			q, err := resource.ParseQuantity(v)
			if err != nil {
				el.invalid("eviction-hard", k+"<"+v, fmt.Sprintf("%q is neither a quantity such as 100Mi nor a percentage such as 10%%", v))
				el.skip["eviction-hard"] = true
				continue
			}
			t.Quantity = &q
		}
		out = append(out, t)
	}
	return out
}

// errorList collects errors that name the flag at fault and where its value
// came from.
type errorList struct {
	// sources maps a flag name to where its value came from, when that was
	// not the canonical flag.
	sources map[string]string
	// skip holds flags that failed to parse, whose zero value validate
	// would report again.
	skip map[string]bool
	errs []error
}

func (l *errorList) add(err error) { l.errs = append(l.errs, err) }

// invalid records `invalid value "v" for --flag (from source): reason`.
func (l *errorList) invalid(flag, value, reason string) {
	if l.skip[flag] {
		return
	}
	from := ""
	if s, ok := l.sources[flag]; ok {
		from = " (from " + s + ")"
		if strings.HasPrefix(s, "derived ") {
			from = " (" + s + ")"
		}
	}
	l.add(fmt.Errorf("invalid value %q for --%s%s: %s", value, flag, from, reason))
}

func sortedKeys[K ~string, V any](m map[K]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, string(k))
	}
	sort.Strings(keys)
	return keys
}
