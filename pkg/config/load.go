package config

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/spf13/pflag"
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

	// Layer 3: the config file, for settings neither flags nor the
	// environment set.
	if path := o.draft.ConfigFile; path != "" {
		f, err := readConfigFile(path)
		if err != nil {
			return nil, warnings, utilerrors.NewAggregate(append(errs, err))
		}
		warnings = append(warnings, f.unusedFieldWarnings()...)
		for i, s := range settings {
			if s.file.path == "" || explicit[s.flag] {
				continue
			}
			v, ok := f.lookup(s.file)
			if !ok {
				continue
			}
			if err := o.values[i].set(v); err != nil {
				errs = append(errs, fmt.Errorf("config file %s, field %q: %w", path, s.file.path, err))
				continue
			}
			sources[s.flag] = fmt.Sprintf("config file field %q", s.file.path)
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

// complete turns o into a Config: it lands every setting, then derives
// the defaults computed from other settings. A setting that fails to parse
// is reported and skipped by validate.
func (l Loader) complete(o *Options, el *errorList) *Config {
	c := o.draft
	c.sources = el.sources
	for i, s := range settings {
		bad := el.reporter(s.flag)
		o.values[i].land(&c, func(value, reason string) {
			bad(value, reason)
			el.skip[s.flag] = true
		})
	}
	l.derive(&c, el)
	return &c
}

// derive fills the defaults that depend on other settings; the settings
// table documents each with defaultDoc.
func (l Loader) derive(c *Config, el *errorList) {
	if c.Kubeconfig == "" {
		c.Kubeconfig = filepath.Join(c.DataDir, "kubeconfig")
	}
	if c.CertDir == "" {
		c.CertDir = filepath.Join(c.DataDir, "pki")
	}
	overridden := c.Hostname != "" // --hostname-override
	if !overridden {
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
			if overridden {
				el.sources["node-name"] = "derived from --hostname-override"
			} else {
				el.sources["node-name"] = "derived from the host name"
			}
		}
	}
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

// reporter returns the report for the setting of flag.
func (l *errorList) reporter(flag string) report {
	return func(value, reason string) { l.invalid(flag, value, reason) }
}

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
