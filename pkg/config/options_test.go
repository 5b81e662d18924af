package config

import (
	"reflect"
	"strings"
	"testing"
)

func TestEnvVarName(t *testing.T) {
	tests := []struct{ flag, want string }{
		{"node-name", "KRUSTLET_NODE_NAME"},
		{"max-pods", "KRUSTLET_MAX_PODS"},
		{"v", "KRUSTLET_V"},
		{"x-allow-local-modules", "KRUSTLET_X_ALLOW_LOCAL_MODULES"},
		{"config", "KRUSTLET_CONFIG"},
	}
	for _, tt := range tests {
		t.Run(tt.flag, func(t *testing.T) {
			assertEqual(t, EnvVarName(tt.flag), tt.want)
		})
	}
}

func TestAliasFlagsAreHiddenAndDeprecated(t *testing.T) {
	fs := newTestFlagSet()
	tests := []struct{ alias, canonical string }{
		{"bootstrap-file", "bootstrap-kubeconfig"},
		{"hostname", "hostname-override"},
		{"addr", "address"},
		{"cert-file", "tls-cert-file"},
		{"private-key-file", "tls-private-key-file"},
	}
	for _, tt := range tests {
		t.Run(tt.alias, func(t *testing.T) {
			f := fs.Lookup(tt.alias)
			if f == nil {
				t.Fatalf("--%s is not defined", tt.alias)
			}
			if !f.Hidden || f.Deprecated != "use --"+tt.canonical+" instead" {
				t.Errorf("--%s: hidden %v, deprecated %q", tt.alias, f.Hidden, f.Deprecated)
			}
			if c := fs.Lookup(tt.canonical); c.Value != f.Value || !strings.Contains(c.Usage, "Alias: --"+tt.alias) {
				t.Errorf("--%s does not share the value of --%s or is not mentioned in its help", tt.alias, tt.canonical)
			}
		})
	}
}

func TestFlagDocs(t *testing.T) {
	docs := FlagDocs(newTestFlagSet())
	byName := map[string]FlagDoc{}
	for _, d := range docs {
		byName[d.Name] = d
	}
	tests := []struct {
		name string
		want FlagDoc
	}{
		{"address", FlagDoc{Name: "address", Aliases: []string{"addr"}, EnvVars: []string{"KRUSTLET_ADDRESS", "KRUSTLET_ADDR"}, Default: "0.0.0.0"}},
		{"kubeconfig", FlagDoc{Name: "kubeconfig", EnvVars: []string{"KRUSTLET_KUBECONFIG"}, Default: "<data-dir>/kubeconfig"}},
		{"eviction-hard", FlagDoc{Name: "eviction-hard", EnvVars: []string{"KRUSTLET_EVICTION_HARD"}, Default: "imagefs.available<15%,memory.available<100Mi,nodefs.available<10%,nodefs.inodesFree<5%"}},
		{"insecure-registries", FlagDoc{Name: "insecure-registries", EnvVars: []string{"KRUSTLET_INSECURE_REGISTRIES"}}},
		{"port", FlagDoc{Name: "port", EnvVars: []string{"KRUSTLET_PORT"}, Default: "10250"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := byName[tt.name]
			got.Usage = ""
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
	if _, ok := byName["addr"]; ok {
		t.Error("aliases are listed as flags of their own")
	}
	for i := 1; i < len(docs); i++ {
		if docs[i-1].Name >= docs[i].Name {
			t.Errorf("not sorted: %s before %s", docs[i-1].Name, docs[i].Name)
		}
	}
}
