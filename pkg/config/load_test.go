package config

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// loadArgs parses args into a fresh flag set and loads it with env as the
// whole environment and "Test-Host" as the host name.
func loadArgs(t *testing.T, args []string, env map[string]string) (*Config, []string, error) {
	t.Helper()
	fs, o := newTestFlagSetOptions()
	if err := fs.Parse(args); err != nil {
		t.Fatalf("parsing %v: %v", args, err)
	}
	l := Loader{
		LookupEnv: func(k string) (string, bool) { v, ok := env[k]; return v, ok },
		Hostname:  func() (string, error) { return "Test-Host", nil },
	}
	return l.Load(fs, o)
}

func newTestFlagSetOptions() (*pflag.FlagSet, *Options) {
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	fs.SetOutput(&strings.Builder{}) // deprecation notices and parse errors
	o := NewOptions()
	AddFlags(fs, o)
	return fs, o
}

func newTestFlagSet() *pflag.FlagSet {
	fs, _ := newTestFlagSetOptions()
	return fs
}

func mustLoad(t *testing.T, args []string, env map[string]string) *Config {
	t.Helper()
	cfg, _, err := loadArgs(t, args, env)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return cfg
}

// writeFile writes a file in a new temporary directory and returns its path.
func writeFile(t *testing.T, name, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

const fileHeader = "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n"

func TestDefaults(t *testing.T) {
	cfg := mustLoad(t, nil, nil)
	q := func(s string) *resource.Quantity { v := resource.MustParse(s); return &v }
	want := &Config{
		Kubeconfig:                  "/var/lib/krustlet/kubeconfig",
		NodeName:                    "test-host",
		Hostname:                    "test-host",
		Address:                     net.ParseIP("0.0.0.0"),
		Port:                        10250,
		HealthzPort:                 10248,
		HealthzBindAddress:          net.ParseIP("127.0.0.1"),
		DataDir:                     "/var/lib/krustlet",
		CertDir:                     "/var/lib/krustlet/pki",
		AuthenticationTokenWebhook:  true,
		AuthorizationMode:           AuthorizationModeWebhook,
		EnableDebuggingHandlers:     true,
		MaxPods:                     110,
		RegisterNode:                true,
		Providers:                   []string{"wasmtime"},
		RotateCertificates:          true,
		RotateServerCertificates:    true,
		ImageGCHighThresholdPercent: 85,
		ImageGCLowThresholdPercent:  80,
		ContainerLogMaxSize:         resource.MustParse("10Mi"),
		ContainerLogMaxFiles:        5,
		KubeAPIQPS:                  50,
		KubeAPIBurst:                100,
		EventRecordQPS:              50,
		EventBurst:                  100,
		NodeStatusUpdateFrequency:   10 * time.Second,
		NodeStatusReportFrequency:   5 * time.Minute,
		NodeLeaseDurationSeconds:    40,
		ShutdownGracePeriod:         30 * time.Second,
		ContainerRuntimeEndpoint:    "unix:///run/containerd/containerd.sock",
		RuntimeRequestTimeout:       2 * time.Minute,
		EvictionHard: []EvictionThreshold{
			{Signal: SignalImageFsAvailable, Percentage: 0.15},
			{Signal: SignalMemoryAvailable, Quantity: q("100Mi")},
			{Signal: SignalNodeFsAvailable, Percentage: 0.1},
			{Signal: SignalNodeFsInodesFree, Percentage: 0.05},
		},
	}
	want.sources = cfg.sources
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("defaults:\n got %+v\nwant %+v", cfg, want)
	}
}

func TestPrecedence(t *testing.T) {
	tests := []struct {
		name     string
		file     string // YAML line(s) in the config file
		env      map[string]string
		flag     string
		get      func(*Config) any
		def      any
		fromFile any
		fromEnv  any
		fromFlag any
	}{
		{
			name: "int32", file: "maxPods: 20", env: map[string]string{"KRUSTLET_MAX_PODS": "30"}, flag: "--max-pods=40",
			get: func(c *Config) any { return c.MaxPods }, def: int32(110), fromFile: int32(20), fromEnv: int32(30), fromFlag: int32(40),
		},
		{
			name: "string", file: "address: 10.0.0.1", env: map[string]string{"KRUSTLET_ADDRESS": "10.0.0.2"}, flag: "--address=10.0.0.3",
			get: func(c *Config) any { return c.Address.String() }, def: "0.0.0.0", fromFile: "10.0.0.1", fromEnv: "10.0.0.2", fromFlag: "10.0.0.3",
		},
		{
			name: "pointer bool", file: "registerNode: false", env: map[string]string{"KRUSTLET_REGISTER_NODE": "true"}, flag: "--register-node=false",
			get: func(c *Config) any { return c.RegisterNode }, def: true, fromFile: false, fromEnv: true, fromFlag: false,
		},
		{
			name: "nested bool", file: "authentication:\n  anonymous:\n    enabled: true", env: map[string]string{"KRUSTLET_ANONYMOUS_AUTH": "false"}, flag: "--anonymous-auth",
			get: func(c *Config) any { return c.AnonymousAuth }, def: false, fromFile: true, fromEnv: false, fromFlag: true,
		},
		{
			name: "duration", file: "nodeStatusUpdateFrequency: 20s", env: map[string]string{"KRUSTLET_NODE_STATUS_UPDATE_FREQUENCY": "30s"}, flag: "--node-status-update-frequency=40s",
			get: func(c *Config) any { return c.NodeStatusUpdateFrequency }, def: 10 * time.Second, fromFile: 20 * time.Second, fromEnv: 30 * time.Second, fromFlag: 40 * time.Second,
		},
		{
			name: "quantity", file: "containerLogMaxSize: 20Mi", env: map[string]string{"KRUSTLET_CONTAINER_LOG_MAX_SIZE": "30Mi"}, flag: "--container-log-max-size=40Mi",
			get: func(c *Config) any { return c.ContainerLogMaxSize.String() }, def: "10Mi", fromFile: "20Mi", fromEnv: "30Mi", fromFlag: "40Mi",
		},
		{
			name: "resource list", file: "systemReserved:\n  cpu: 100m", env: map[string]string{"KRUSTLET_SYSTEM_RESERVED": "cpu=200m"}, flag: "--system-reserved=cpu=300m,memory=1Gi",
			get: func(c *Config) any {
				if c.SystemReserved == nil {
					return ""
				}
				q := c.SystemReserved[v1.ResourceCPU]
				return q.String()
			},
			def: "", fromFile: "100m", fromEnv: "200m", fromFlag: "300m",
		},
		{
			name: "eviction map replaces the lower layer", file: "evictionHard:\n  memory.available: 1Gi", env: map[string]string{"KRUSTLET_EVICTION_HARD": "pid.available<10%"}, flag: "--eviction-hard=nodefs.available<20%",
			get: func(c *Config) any {
				var s []string
				for _, e := range c.EvictionHard {
					s = append(s, string(e.Signal))
				}
				return strings.Join(s, ",")
			},
			def: "imagefs.available,memory.available,nodefs.available,nodefs.inodesFree", fromFile: "memory.available", fromEnv: "pid.available", fromFlag: "nodefs.available",
		},
		{
			name: "taints", file: "registerWithTaints:\n- key: a\n  effect: NoSchedule", env: map[string]string{"KRUSTLET_REGISTER_WITH_TAINTS": "b=x:NoExecute"}, flag: "--register-with-taints=c:PreferNoSchedule",
			get: func(c *Config) any {
				var s []string
				for _, taint := range c.RegisterWithTaints {
					s = append(s, taint.ToString())
				}
				return strings.Join(s, ",")
			},
			def: "", fromFile: "a:NoSchedule", fromEnv: "b=x:NoExecute", fromFlag: "c:PreferNoSchedule",
		},
		{
			name: "krustlet document list", file: "---\n" + krustletHeader + "providers: [a, b]", env: map[string]string{"KRUSTLET_PROVIDER": "c"}, flag: "--provider=d,e",
			get: func(c *Config) any { return strings.Join(c.Providers, ",") }, def: "wasmtime", fromFile: "a,b", fromEnv: "c", fromFlag: "d,e",
		},
		{
			name: "krustlet document map", file: "---\n" + krustletHeader + "runtimeHandlers:\n  a: wasmtime", env: map[string]string{"KRUSTLET_RUNTIME_HANDLERS": "b=wasmtime"}, flag: "--runtime-handlers=c=wasmtime",
			get: func(c *Config) any { return strings.Join(sortedKeys(c.RuntimeHandlers), ",") }, def: "", fromFile: "a", fromEnv: "b", fromFlag: "c",
		},
		{
			name: "mapped name", file: "serverTLSBootstrap: false", env: map[string]string{"KRUSTLET_ROTATE_SERVER_CERTIFICATES": "true"}, flag: "--rotate-server-certificates=false",
			get: func(c *Config) any { return c.RotateServerCertificates }, def: true, fromFile: false, fromEnv: true, fromFlag: false,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file := writeFile(t, "kubelet.yaml", fileHeader+tt.file+"\n")
			layers := []struct {
				name string
				args []string
				env  map[string]string
				want any
			}{
				{"default", nil, nil, tt.def},
				{"file beats default", []string{"--config", file}, nil, tt.fromFile},
				{"env beats file", []string{"--config", file}, tt.env, tt.fromEnv},
				{"flag beats env", []string{"--config", file, tt.flag}, tt.env, tt.fromFlag},
			}
			for _, l := range layers {
				t.Run(l.name, func(t *testing.T) {
					cfg := mustLoad(t, l.args, l.env)
					if got := tt.get(cfg); !reflect.DeepEqual(got, l.want) {
						t.Errorf("got %v (%T), want %v (%T)", got, got, l.want, l.want)
					}
				})
			}
		})
	}
}

func TestConfigFileFromEnv(t *testing.T) {
	file := writeFile(t, "kubelet.yaml", fileHeader+"port: 11000\n")
	cfg := mustLoad(t, nil, map[string]string{"KRUSTLET_CONFIG": file})
	if cfg.Port != 11000 || cfg.ConfigFile != file {
		t.Errorf("port %d, config file %q: want 11000 from %q", cfg.Port, cfg.ConfigFile, file)
	}
}

func TestAliases(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		get     func(*Config) string
		want    string
		wantErr string
	}{
		{name: "--addr", args: []string{"--addr=10.1.1.1"}, get: func(c *Config) string { return c.Address.String() }, want: "10.1.1.1"},
		{name: "--hostname", args: []string{"--hostname=Node-A"}, get: func(c *Config) string { return c.Hostname + " " + c.NodeName }, want: "node-a node-a"},
		{name: "--bootstrap-file", args: []string{"--bootstrap-file=/b"}, get: func(c *Config) string { return c.BootstrapKubeconfig }, want: "/b"},
		{name: "--cert-file and --private-key-file", args: []string{"--cert-file=/c", "--private-key-file=/k"}, get: func(c *Config) string { return c.TLSCertFile + " " + c.TLSPrivateKeyFile }, want: "/c /k"},
		{name: "KRUSTLET_ADDR", env: map[string]string{"KRUSTLET_ADDR": "10.2.2.2"}, get: func(c *Config) string { return c.Address.String() }, want: "10.2.2.2"},
		{name: "KRUSTLET_HOSTNAME", env: map[string]string{"KRUSTLET_HOSTNAME": "node-b"}, get: func(c *Config) string { return c.NodeName }, want: "node-b"},
		{name: "KRUSTLET_BOOTSTRAP_FILE", env: map[string]string{"KRUSTLET_BOOTSTRAP_FILE": "/b"}, get: func(c *Config) string { return c.BootstrapKubeconfig }, want: "/b"},
		{name: "KRUSTLET_CERT_FILE and KRUSTLET_PRIVATE_KEY_FILE", env: map[string]string{"KRUSTLET_CERT_FILE": "/c", "KRUSTLET_PRIVATE_KEY_FILE": "/k"}, get: func(c *Config) string { return c.TLSCertFile + " " + c.TLSPrivateKeyFile }, want: "/c /k"},
		{name: "canonical and alias env agree", env: map[string]string{"KRUSTLET_ADDRESS": "10.3.3.3", "KRUSTLET_ADDR": "10.3.3.3"}, get: func(c *Config) string { return c.Address.String() }, want: "10.3.3.3"},
		{name: "alias flag beats canonical env", args: []string{"--addr=10.4.4.4"}, env: map[string]string{"KRUSTLET_ADDRESS": "10.5.5.5"}, get: func(c *Config) string { return c.Address.String() }, want: "10.4.4.4"},
		{name: "canonical flag beats alias env", args: []string{"--address=10.4.4.4"}, env: map[string]string{"KRUSTLET_ADDR": "10.5.5.5"}, get: func(c *Config) string { return c.Address.String() }, want: "10.4.4.4"},
		{
			name: "canonical and alias env disagree", env: map[string]string{"KRUSTLET_ADDRESS": "10.3.3.3", "KRUSTLET_ADDR": "10.6.6.6"},
			wantErr: `environment variables KRUSTLET_ADDRESS="10.3.3.3" and KRUSTLET_ADDR="10.6.6.6" both set --address with different values: set only KRUSTLET_ADDRESS`,
		},
		{
			name: "canonical and alias flag", args: []string{"--address=10.1.1.1", "--addr=10.1.1.1"},
			wantErr: "flags --addr and --address are the same setting: use only --address",
		},
		{
			name: "alias value is validated under the canonical name", args: []string{"--addr=nope"},
			wantErr: `invalid value "nope" for --address (from --addr): must be an IP address`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, _, err := loadArgs(t, tt.args, tt.env)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("error %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := tt.get(cfg); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestAliasEnvWarns(t *testing.T) {
	_, warnings, err := loadArgs(t, nil, map[string]string{"KRUSTLET_ADDR": "10.2.2.2"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"KRUSTLET_ADDR is deprecated, use KRUSTLET_ADDRESS instead"}
	if !reflect.DeepEqual(warnings, want) {
		t.Errorf("warnings %q, want %q", warnings, want)
	}
}

func TestEnvironment(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		check   func(t *testing.T, c *Config)
		wantErr string
	}{
		{
			name: "every type parses",
			env: map[string]string{
				"KRUSTLET_NODE_NAME":             "env-node",
				"KRUSTLET_NODE_IP":               "10.0.0.5,fd00::5",
				"KRUSTLET_NODE_LABELS":           "a=b,node.kubernetes.io/role=edge",
				"KRUSTLET_INSECURE_REGISTRIES":   "localhost:5000,registry.local",
				"KRUSTLET_X_ALLOW_LOCAL_MODULES": "true",
				"KRUSTLET_SHUTDOWN_GRACE_PERIOD": "1m",
			},
			check: func(t *testing.T, c *Config) {
				if c.NodeName != "env-node" || !c.AllowLocalModules || c.ShutdownGracePeriod != time.Minute {
					t.Errorf("scalars: %q %v %v", c.NodeName, c.AllowLocalModules, c.ShutdownGracePeriod)
				}
				if len(c.NodeIPs) != 2 || !c.NodeIPs[0].Equal(net.ParseIP("10.0.0.5")) || !c.NodeIPs[1].Equal(net.ParseIP("fd00::5")) {
					t.Errorf("node IPs %v", c.NodeIPs)
				}
				if want := map[string]string{"a": "b", "node.kubernetes.io/role": "edge"}; !reflect.DeepEqual(c.NodeLabels, want) {
					t.Errorf("labels %v, want %v", c.NodeLabels, want)
				}
				if want := []string{"localhost:5000", "registry.local"}; !reflect.DeepEqual(c.InsecureRegistries, want) {
					t.Errorf("registries %v, want %v", c.InsecureRegistries, want)
				}
			},
		},
		{
			name:  "empty variable is unset",
			env:   map[string]string{"KRUSTLET_MAX_PODS": ""},
			check: func(t *testing.T, c *Config) { assertEqual(t, c.MaxPods, int32(110)) },
		},
		{
			name:    "unparsable value names the variable",
			env:     map[string]string{"KRUSTLET_PORT": "http"},
			wantErr: `invalid value "http" for --port (from KRUSTLET_PORT): must be an integer`,
		},
		{
			name:    "invalid value names the variable",
			env:     map[string]string{"KRUSTLET_PORT": "70000"},
			wantErr: `invalid value "70000" for --port (from KRUSTLET_PORT): must be between 1 and 65535`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, _, err := loadArgs(t, nil, tt.env)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("error %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, cfg)
		})
	}
}

// TestEnvironmentForOtherFlags shows that flags other than the node flags,
// such as klog's -v, read their variable too.
func TestEnvironmentForOtherFlags(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want int32
	}{
		{"from the environment", nil, 4},
		{"flag wins", []string{"-v", "2"}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
			o := NewOptions()
			AddFlags(fs, o)
			v := fs.Int32P("v", "v", 0, "verbosity")
			if err := fs.Parse(tt.args); err != nil {
				t.Fatal(err)
			}
			l := Loader{
				LookupEnv: func(k string) (string, bool) { return map[string]string{"KRUSTLET_V": "4"}[k], k == "KRUSTLET_V" },
				Hostname:  func() (string, error) { return "h", nil },
			}
			if _, _, err := l.Load(fs, o); err != nil {
				t.Fatal(err)
			}
			assertEqual(t, *v, tt.want)
		})
	}
}

func TestDerivedDefaults(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		hostname func() (string, error)
		want     func(c *Config) []string
		expect   []string
		wantErr  string
	}{
		{
			name:   "paths follow --data-dir",
			args:   []string{"--data-dir=/srv/k"},
			want:   func(c *Config) []string { return []string{c.Kubeconfig, c.CertDir} },
			expect: []string{"/srv/k/kubeconfig", "/srv/k/pki"},
		},
		{
			name:   "explicit paths win",
			args:   []string{"--data-dir=/srv/k", "--kubeconfig=/etc/kc", "--cert-dir=/etc/pki"},
			want:   func(c *Config) []string { return []string{c.Kubeconfig, c.CertDir} },
			expect: []string{"/etc/kc", "/etc/pki"},
		},
		{
			name:   "node name is the lowercased host name",
			want:   func(c *Config) []string { return []string{c.NodeName, c.Hostname} },
			expect: []string{"test-host", "test-host"},
		},
		{
			name:   "node name follows --hostname-override",
			args:   []string{"--hostname-override=Edge-1"},
			want:   func(c *Config) []string { return []string{c.NodeName, c.Hostname} },
			expect: []string{"edge-1", "edge-1"},
		},
		{
			name:   "--node-name is kept apart from the host name",
			args:   []string{"--node-name=n1"},
			want:   func(c *Config) []string { return []string{c.NodeName, c.Hostname} },
			expect: []string{"n1", "test-host"},
		},
		{
			name:     "host name that is not a node name",
			hostname: func() (string, error) { return "bad_host", nil },
			wantErr:  `invalid value "bad_host" for --node-name (derived from the host name): must be a valid DNS-1123 subdomain`,
		},
		{
			name:     "host name lookup fails",
			args:     []string{"--node-name=n1"},
			hostname: func() (string, error) { return "", errors.New("no uts") },
			wantErr:  "detecting the host name (set --hostname-override or --node-name): no uts",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
			o := NewOptions()
			AddFlags(fs, o)
			if err := fs.Parse(tt.args); err != nil {
				t.Fatal(err)
			}
			l := Loader{LookupEnv: func(string) (string, bool) { return "", false }, Hostname: tt.hostname}
			if l.Hostname == nil {
				l.Hostname = func() (string, error) { return "Test-Host", nil }
			}
			cfg, _, err := l.Load(fs, o)
			if tt.wantErr != "" {
				if err == nil || !strings.HasPrefix(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want prefix %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := tt.want(cfg); !reflect.DeepEqual(got, tt.expect) {
				t.Errorf("got %q, want %q", got, tt.expect)
			}
		})
	}
}

func TestTypedValues(t *testing.T) {
	cfg := mustLoad(t, []string{
		"--node-labels=a=b", "--node-labels=kubernetes.io/arch=wasm32",
		"--register-with-taints=k=v:NoSchedule,k2:NoExecute",
		"--kube-reserved=cpu=100m,memory=256Mi,ephemeral-storage=1Gi,pid=100",
		"--eviction-hard=memory.available<1Gi,pid.available<12.5%",
		"--node-ip=fd00::1",
	}, nil)
	if want := map[string]string{"a": "b", "kubernetes.io/arch": "wasm32"}; !reflect.DeepEqual(cfg.NodeLabels, want) {
		t.Errorf("labels %v, want %v (repeated flags merge)", cfg.NodeLabels, want)
	}
	wantTaints := []v1.Taint{{Key: "k", Value: "v", Effect: v1.TaintEffectNoSchedule}, {Key: "k2", Effect: v1.TaintEffectNoExecute}}
	if !reflect.DeepEqual(cfg.RegisterWithTaints, wantTaints) {
		t.Errorf("taints %v, want %v", cfg.RegisterWithTaints, wantTaints)
	}
	wantReserved := v1.ResourceList{
		v1.ResourceCPU: resource.MustParse("100m"), v1.ResourceMemory: resource.MustParse("256Mi"),
		v1.ResourceEphemeralStorage: resource.MustParse("1Gi"), "pid": resource.MustParse("100"),
	}
	for name, want := range wantReserved {
		if got := cfg.KubeReserved[name]; got.Cmp(want) != 0 {
			t.Errorf("kube-reserved %s = %s, want %s", name, got.String(), want.String())
		}
	}
	gi := resource.MustParse("1Gi")
	wantEviction := []EvictionThreshold{{Signal: SignalMemoryAvailable, Quantity: &gi}, {Signal: SignalPIDAvailable, Percentage: 0.125}}
	if !reflect.DeepEqual(cfg.EvictionHard, wantEviction) {
		t.Errorf("eviction %+v, want %+v", cfg.EvictionHard, wantEviction)
	}
	if len(cfg.NodeIPs) != 1 || !cfg.NodeIPs[0].Equal(net.ParseIP("fd00::1")) {
		t.Errorf("node IPs %v", cfg.NodeIPs)
	}
}

func assertEqual[T comparable](t *testing.T, got, want T) {
	t.Helper()
	if got != want {
		t.Errorf("got %v, want %v", got, want)
	}
}

func mustWrite(t *testing.T, path, text string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
}
