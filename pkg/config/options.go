package config

import (
	"fmt"
	"reflect"
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

// Options holds the node settings as the flags hold them, bound by
// AddFlags. Load layers the environment and the config file under them and
// turns them into a Config. Build it with NewOptions, which sets the
// defaults.
type Options struct {
	// draft holds the settings that land in Config as they are (see
	// field); the flags write into it.
	draft Config
	// values holds every setting, in the order of settings.
	values []value
}

// NewOptions returns Options holding the defaults.
func NewOptions() *Options {
	o := &Options{}
	for _, s := range settings {
		o.values = append(o.values, s.value(o))
	}
	return o
}

// AddFlags binds the node flags, and krustlet's old names for some of them,
// to o on fs. It can be called on any command's flag set, so that every
// command that starts a node shares the same flags.
func AddFlags(fs *pflag.FlagSet, o *Options) {
	for i, s := range settings {
		o.values[i].define(fs, s.flag, s.usage)
		for _, alias := range s.aliases {
			addAlias(fs, s.flag, alias)
		}
		if s.defaultDoc != "" {
			if err := fs.SetAnnotation(s.flag, annotationDefault, []string{s.defaultDoc}); err != nil {
				panic(err) // the flag was just defined
			}
		}
	}
}

// value holds one setting of Options, from its flag to Config.
type value interface {
	// define adds the flag to fs; its default is the value's content.
	define(fs *pflag.FlagSet, name, usage string)
	// set stores a config file field, converted to the flag's type.
	set(v reflect.Value) error
	// land stores the value in c, calling bad for what does not parse.
	land(c *Config, bad report)
}

// field makes a setting that lands as it is in the Config field f, of the
// flag's own type; def is its default.
func field[T any](def T, f func(*Config) *T) func(*Options) value {
	return func(o *Options) value {
		p := f(&o.draft)
		*p = def
		return &binding[T]{p: p}
	}
}

// parsed makes a setting whose flag holds a T that land parses into
// Config, calling bad for what does not parse; def is its default. Values
// are parsed when the configuration is loaded, not when the flag is set,
// so that every problem is reported at once.
func parsed[T any](def T, land func(c *Config, v T, bad report)) func(*Options) value {
	return func(*Options) value {
		p := new(T)
		*p = def
		return &binding[T]{p: p, parse: land}
	}
}

// binding is a setting whose flag holds a T at p.
type binding[T any] struct {
	p     *T
	parse func(c *Config, v T, bad report) // nil when p is in Options.draft
}

// evictionThresholds is the type of --eviction-hard: signal<value pairs.
type evictionThresholds map[string]string

// define adds the flag with the syntax of T: string, bool, int32 and
// time.Duration as pflag writes them; []string a comma-separated list;
// map[string]string key=value pairs and evictionThresholds signal<value
// pairs, comma-separated (as cliflag's maps); []v1.Taint key=value:Effect,
// comma-separated.
func (b *binding[T]) define(fs *pflag.FlagSet, name, usage string) {
	switch p := any(b.p).(type) {
	case *string:
		fs.StringVar(p, name, *p, usage)
	case *bool:
		fs.BoolVar(p, name, *p, usage)
	case *int32:
		fs.Int32Var(p, name, *p, usage)
	case *time.Duration:
		fs.DurationVar(p, name, *p, usage)
	case *[]string:
		fs.StringSliceVar(p, name, *p, usage)
	case *map[string]string:
		fs.Var(cliflag.NewMapStringString(p), name, usage)
	case *evictionThresholds:
		fs.Var(cliflag.NewLangleSeparatedMapStringString((*map[string]string)(p)), name, usage)
	case *[]v1.Taint:
		fs.Var(&taintsValue{taints: p}, name, usage)
	default:
		panic(fmt.Sprintf("--%s: no flag syntax for %T", name, *b.p))
	}
}

func (b *binding[T]) set(v reflect.Value) error {
	t := reflect.TypeFor[T]()
	if !v.Type().ConvertibleTo(t) {
		return fmt.Errorf("a %s does not convert to the flag's %s", v.Type(), t)
	}
	reflect.ValueOf(b.p).Elem().Set(v.Convert(t))
	return nil
}

func (b *binding[T]) land(c *Config, bad report) {
	if b.parse != nil {
		b.parse(c, *b.p, bad)
	}
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
		} else if _, ok := f.Value.(pflag.SliceValue); ok {
			d.Default = strings.TrimSuffix(strings.TrimPrefix(d.Default, "["), "]") // as the flag is written
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
