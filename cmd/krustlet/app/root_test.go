package app

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/krustlet/krustlet-go/pkg/config"
	"github.com/krustlet/krustlet-go/pkg/version"
)

// execute runs the command in process and returns its output and error.
// run records the Config it is given.
func execute(t *testing.T, args ...string) (cfg *config.Config, stdout, stderr string, err error) {
	t.Helper()
	var out, errOut bytes.Buffer
	cmd := NewKrustletCommand(func(_ context.Context, c *config.Config) error {
		cfg = c
		return nil
	})
	cmd.SetArgs(args)
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	err = cmd.ExecuteContext(context.Background())
	return cfg, out.String(), errOut.String(), err
}

func TestVersion(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		check   func(t *testing.T, out string)
		wantErr string
	}{
		{
			name: "text",
			args: []string{"version"},
			check: func(t *testing.T, out string) {
				if want := version.Get().Long() + "\n"; out != want {
					t.Errorf("got %q, want %q", out, want)
				}
			},
		},
		{
			name: "json",
			args: []string{"version", "-o", "json"},
			check: func(t *testing.T, out string) {
				var got version.Info
				if err := json.Unmarshal([]byte(out), &got); err != nil {
					t.Fatalf("not JSON: %v\n%s", err, out)
				}
				if got != version.Get() {
					t.Errorf("got %+v, want %+v", got, version.Get())
				}
			},
		},
		{
			name:    "unknown format",
			args:    []string{"version", "--output=yaml"},
			wantErr: `invalid value "yaml" for --output: must be json, or empty for text`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, out, _, err := execute(t, tt.args...)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("error %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, out)
		})
	}
}

func TestFlagsMarkdown(t *testing.T) {
	_, out, _, err := execute(t, "flags", "--markdown")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if lines[0] != "| Flag | Alias | Environment variable | Default | Description |" || lines[1] != "|---|---|---|---|---|" {
		t.Fatalf("no table header:\n%s", out)
	}
	tests := []struct {
		name string
		row  string // the row's start
	}{
		{"alias and env vars", "| `--address` | `--addr` | `KRUSTLET_ADDRESS`, `KRUSTLET_ADDR` | `0.0.0.0` | "},
		{"computed default", "| `--kubeconfig` |  | `KRUSTLET_KUBECONFIG` | `<data-dir>/kubeconfig` | Path to the kubeconfig used to talk to the API server. Defaults to &lt;data-dir&gt;/kubeconfig. |"},
		{"klog verbosity", "| `-v`, `--v` |  | `KRUSTLET_V` | `0` | "},
		{"klog vmodule", "| `--vmodule` |  | `KRUSTLET_VMODULE` |  | "},
		{"config", "| `--config` |  | `KRUSTLET_CONFIG` |  | "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, l := range lines {
				if strings.HasPrefix(l, tt.row) {
					return
				}
			}
			t.Errorf("no row starting with %q in:\n%s", tt.row, out)
		})
	}
	for _, l := range lines {
		if strings.HasPrefix(l, "| `--addr` ") || strings.HasPrefix(l, "| `--help` ") {
			t.Errorf("unexpected row %q", l)
		}
	}
	// One row per flag: 45 node flags, -v and --vmodule.
	if got := len(lines) - 2; got != 52 {
		t.Errorf("%d rows, want 52", got)
	}
}

func TestFlagsText(t *testing.T) {
	_, out, _, err := execute(t, "flags")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out, "FLAG") || !strings.Contains(out, "KRUSTLET_NODE_NAME") {
		t.Errorf("unexpected output:\n%s", out)
	}
}

func TestBadInput(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"validation", []string{"--node-name=n", "--port=70000"}, nil, `invalid value "70000" for --port: must be between 1 and 65535`},
		{"flag syntax", []string{"--node-name=n", "--max-pods=many"}, nil, "invalid argument \"many\" for \"--max-pods\" flag: must be an integer\nrun 'krustlet --help' for usage"},
		{"unknown flag", []string{"--no-such-flag"}, nil, "unknown flag: --no-such-flag\nrun 'krustlet --help' for usage"},
		{"environment", []string{"--node-name=n"}, map[string]string{"KRUSTLET_HEALTHZ_PORT": "99999"}, `invalid value "99999" for --healthz-port (from KRUSTLET_HEALTHZ_PORT): must be between 0 and 65535`},
		{
			"several problems", []string{"--node-name=n", "--port=0", "--authorization-mode=Nope"}, nil,
			"invalid configuration (2 problems):\n" +
				"  invalid value \"0\" for --port: must be between 1 and 65535\n" +
				"  invalid value \"Nope\" for --authorization-mode: must be Webhook or AlwaysAllow",
		},
		{"arguments", []string{"--node-name=n", "extra"}, nil, `unknown command "extra" for "krustlet"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			cfg, out, errOut, err := execute(t, tt.args...)
			if err == nil || err.Error() != tt.want {
				t.Fatalf("error %q, want %q", err, tt.want)
			}
			if cfg != nil {
				t.Error("the run function was called")
			}
			if out != "" || errOut != "" {
				t.Errorf("printed output (usage?): stdout %q, stderr %q", out, errOut)
			}
		})
	}
}

func TestEnvironmentReachesRun(t *testing.T) {
	file := filepath.Join(t.TempDir(), "kubelet.yaml")
	if err := os.WriteFile(file, []byte("apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\nmaxPods: 10\nport: 10300\nkubeAPIQPS: 7\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("KRUSTLET_CONFIG", file)
	t.Setenv("KRUSTLET_MAX_PODS", "42")
	t.Setenv("KRUSTLET_NODE_NAME", "env-node")
	t.Setenv("KRUSTLET_ADDR", "10.9.9.9")
	t.Setenv("KRUSTLET_KUBE_API_QPS", "8")

	cfg, _, _, err := execute(t, "--node-name=flag-node", "--kube-api-qps=9")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		got, want any
	}{
		{"flag beats env", cfg.NodeName, "flag-node"},
		{"flag beats env and file", cfg.KubeAPIQPS, int32(9)},
		{"env beats file", cfg.MaxPods, int32(42)},
		{"file beats default", cfg.Port, int32(10300)},
		{"alias env", cfg.Address.String(), "10.9.9.9"},
		{"default provider", cfg.DefaultProvider(), "wasmtime"},
		{"config file from env", cfg.ConfigFile, file},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Errorf("got %v, want %v", tt.got, tt.want)
			}
		})
	}
}

func TestRunGetsContextAndError(t *testing.T) {
	type key struct{}
	ctx := context.WithValue(context.Background(), key{}, "v")
	want := errors.New("boom")
	var got any
	cmd := NewKrustletCommand(func(ctx context.Context, _ *config.Config) error {
		got = ctx.Value(key{})
		return want
	})
	cmd.SetArgs([]string{"--node-name=n"})
	if err := cmd.ExecuteContext(ctx); !errors.Is(err, want) {
		t.Fatalf("error %v, want %v", err, want)
	}
	if got != "v" {
		t.Errorf("run did not get the command's context")
	}
}

// TestJoinCarriesNodeFlags shows that join takes the node flags, loads them
// the same way, and names every missing join flag before contacting anyone.
func TestJoinCarriesNodeFlags(t *testing.T) {
	root := NewKrustletCommand(func(context.Context, *config.Config) error {
		t.Fatal("run must not be called")
		return nil
	})
	t.Setenv("KRUSTLET_MAX_PODS", "many")
	root.SetErr(io.Discard)
	root.SetArgs([]string{"join", "--node-name=j"})
	err := root.Execute()
	if err == nil || !strings.Contains(err.Error(), "KRUSTLET_MAX_PODS") {
		t.Fatalf("join with a bad KRUSTLET_MAX_PODS: %v", err)
	}
	t.Setenv("KRUSTLET_MAX_PODS", "12")
	root.SetArgs([]string{"join", "--node-name=j"})
	err = root.Execute()
	for _, want := range []string{"--server", "--token is required", "--discovery-token-ca-cert-hash is required"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("join without join flags: %v; want it to mention %q", err, want)
		}
	}
}
