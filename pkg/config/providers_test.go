package config

import (
	"reflect"
	"testing"
)

func TestProvidersAndHandlers(t *testing.T) {
	tests := []struct {
		name         string
		args         []string
		env          map[string]string
		wantProvider []string
		wantDefault  string
		wantHandlers map[string]string
	}{
		{
			name:         "default",
			wantProvider: []string{"wasmtime"}, wantDefault: "wasmtime",
			wantHandlers: map[string]string{"wasmtime": "wasmtime"},
		},
		{
			name:         "one provider",
			args:         []string{"--provider=cri"},
			wantProvider: []string{"cri"}, wantDefault: "cri",
			wantHandlers: map[string]string{"cri": "cri"},
		},
		{
			name:         "a list, the first is the default",
			args:         []string{"--provider=cri,wasmtime"},
			wantProvider: []string{"cri", "wasmtime"}, wantDefault: "cri",
			wantHandlers: map[string]string{"cri": "cri", "wasmtime": "wasmtime"},
		},
		{
			name:         "spaces around names are dropped",
			args:         []string{"--provider=wasmtime, cri"},
			wantProvider: []string{"wasmtime", "cri"}, wantDefault: "wasmtime",
			wantHandlers: map[string]string{"wasmtime": "wasmtime", "cri": "cri"},
		},
		{
			name:         "repeated flag appends",
			args:         []string{"--provider=wasmtime", "--provider=cri"},
			wantProvider: []string{"wasmtime", "cri"}, wantDefault: "wasmtime",
			wantHandlers: map[string]string{"wasmtime": "wasmtime", "cri": "cri"},
		},
		{
			name:         "handlers add to the providers' own",
			args:         []string{"--provider=wasmtime,cri", "--runtime-handlers=fast=wasmtime,runc=cri"},
			wantProvider: []string{"wasmtime", "cri"}, wantDefault: "wasmtime",
			wantHandlers: map[string]string{"wasmtime": "wasmtime", "cri": "cri", "fast": "wasmtime", "runc": "cri"},
		},
		{
			name:         "an explicit handler wins over a provider's own",
			args:         []string{"--provider=wasmtime,cri", "--runtime-handlers=wasmtime=cri"},
			wantProvider: []string{"wasmtime", "cri"}, wantDefault: "wasmtime",
			wantHandlers: map[string]string{"wasmtime": "cri", "cri": "cri"},
		},
		{
			name:         "from the environment",
			env:          map[string]string{"KRUSTLET_PROVIDER": "cri,wasmtime", "KRUSTLET_RUNTIME_HANDLERS": "spin=wasmtime"},
			wantProvider: []string{"cri", "wasmtime"}, wantDefault: "cri",
			wantHandlers: map[string]string{"cri": "cri", "wasmtime": "wasmtime", "spin": "wasmtime"},
		},
		{
			name:         "flags beat the environment",
			args:         []string{"--provider=wasmtime", "--runtime-handlers=a=wasmtime"},
			env:          map[string]string{"KRUSTLET_PROVIDER": "cri", "KRUSTLET_RUNTIME_HANDLERS": "b=cri"},
			wantProvider: []string{"wasmtime"}, wantDefault: "wasmtime",
			wantHandlers: map[string]string{"wasmtime": "wasmtime", "a": "wasmtime"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := mustLoad(t, tt.args, tt.env)
			if !reflect.DeepEqual(cfg.Providers, tt.wantProvider) {
				t.Errorf("Providers %q, want %q", cfg.Providers, tt.wantProvider)
			}
			assertEqual(t, cfg.DefaultProvider(), tt.wantDefault)
			if got := cfg.Handlers(); !reflect.DeepEqual(got, tt.wantHandlers) {
				t.Errorf("Handlers() %v, want %v", got, tt.wantHandlers)
			}
		})
	}
}

func TestHandlersOfHandBuiltConfig(t *testing.T) {
	tests := []struct {
		name        string
		cfg         Config
		want        map[string]string
		wantDefault string
	}{
		{name: "zero", want: map[string]string{}},
		{name: "providers only", cfg: Config{Providers: []string{"a", "b"}}, want: map[string]string{"a": "a", "b": "b"}, wantDefault: "a"},
		{
			name: "handlers win",
			cfg:  Config{Providers: []string{"a", "b"}, RuntimeHandlers: map[string]string{"a": "b", "h": "a"}},
			want: map[string]string{"a": "b", "b": "b", "h": "a"}, wantDefault: "a",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.cfg.Handlers()
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Handlers() %v, want %v", got, tt.want)
			}
			got["new"] = "x"
			if _, ok := tt.cfg.RuntimeHandlers["new"]; ok {
				t.Error("Handlers() returned RuntimeHandlers itself")
			}
			assertEqual(t, tt.cfg.DefaultProvider(), tt.wantDefault)
		})
	}
}
