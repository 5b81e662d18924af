package config

import (
	"errors"
	"strings"
	"testing"

	utilerrors "k8s.io/apimachinery/pkg/util/errors"
)

func TestValidationErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  map[string]string
		file string // config file body, after the header
		// want lists every expected error, in order; each must be a prefix
		// of the error (apimachinery's explanations follow some of them).
		want []string
	}{
		{name: "port too high", args: []string{"--port=70000"}, want: []string{`invalid value "70000" for --port: must be between 1 and 65535`}},
		{name: "port zero", args: []string{"--port=0"}, want: []string{`invalid value "0" for --port: must be between 1 and 65535`}},
		{name: "healthz port negative", args: []string{"--healthz-port=-1"}, want: []string{`invalid value "-1" for --healthz-port: must be between 0 and 65535`}},
		{name: "healthz port zero disables", args: []string{"--healthz-port=0"}},
		{name: "node ip not an ip", args: []string{"--node-ip=10.0.0.1,nope"}, want: []string{`invalid value "10.0.0.1,nope" for --node-ip: "nope" is not an IP address; want a comma-separated list of at most one IPv4 and one IPv6 address`}},
		{name: "two ipv4 node ips", args: []string{"--node-ip=10.0.0.1,10.0.0.2"}, want: []string{`invalid value "10.0.0.1,10.0.0.2" for --node-ip: must be at most one IPv4 and one IPv6 address`}},
		{name: "dual-stack node ips", args: []string{"--node-ip=10.0.0.1,fd00::1"}},
		{name: "address", args: []string{"--address=localhost"}, want: []string{`invalid value "localhost" for --address: must be an IP address`}},
		{name: "healthz bind address", args: []string{"--healthz-bind-address=1.2.3"}, want: []string{`invalid value "1.2.3" for --healthz-bind-address: must be an IP address`}},
		{name: "node name", args: []string{"--node-name=Node_1"}, want: []string{`invalid value "Node_1" for --node-name: must be a valid DNS-1123 subdomain: `}},
		{name: "data dir", args: []string{"--data-dir="}, want: []string{`invalid value "" for --data-dir: must be a directory`}},
		{name: "cert without key", args: []string{"--tls-cert-file=/c"}, want: []string{`invalid value "" for --tls-private-key-file: must be set when --tls-cert-file is set`}},
		{name: "key without cert", args: []string{"--tls-private-key-file=/k"}, want: []string{`invalid value "" for --tls-cert-file: must be set when --tls-private-key-file is set`}},
		{name: "authorization mode", args: []string{"--authorization-mode=RBAC"}, want: []string{`invalid value "RBAC" for --authorization-mode: must be Webhook or AlwaysAllow`}},
		{name: "max pods", args: []string{"--max-pods=0"}, want: []string{`invalid value "0" for --max-pods: must be greater than 0`}},
		{name: "label key", args: []string{"--node-labels=a/b/c=d"}, want: []string{`invalid value "a/b/c=d" for --node-labels: key: `}},
		{name: "label value", args: []string{"--node-labels=a=-b"}, want: []string{`invalid value "a=-b" for --node-labels: value: `}},
		{
			name: "restricted label namespaces",
			args: []string{"--node-labels=kubernetes.io/role=x,example.k8s.io/y=z,node-role.kubernetes.io/worker="},
			want: []string{
				`invalid value "example.k8s.io/y=z" for --node-labels: labels in the kubernetes.io and k8s.io namespaces must be one of kubernetes.io/hostname,`,
				`invalid value "kubernetes.io/role=x" for --node-labels: labels in the kubernetes.io and k8s.io namespaces must be one of`,
				`invalid value "node-role.kubernetes.io/worker=" for --node-labels: labels in the kubernetes.io and k8s.io namespaces must be one of`,
			},
		},
		{
			name: "allowed kubernetes labels",
			args: []string{"--node-labels=kubernetes.io/hostname=h,kubernetes.io/arch=wasm32,kubernetes.io/os=wasi,beta.kubernetes.io/os=wasi," +
				"node.kubernetes.io/instance-type=t,topology.kubernetes.io/zone=z,failure-domain.beta.kubernetes.io/region=r," +
				"node.kubernetes.io/anything=x,sub.kubelet.kubernetes.io/y=z,example.com/free=yes"},
		},
		{name: "taint effect", args: []string{"--register-with-taints=a=b:NoRun"}, want: []string{`invalid value "a=b:NoRun" for --register-with-taints: effect must be NoSchedule, PreferNoSchedule or NoExecute`}},
		{name: "taint key", args: []string{"--register-with-taints=a b:NoSchedule"}, want: []string{`invalid value "a b:NoSchedule" for --register-with-taints: key: `}},
		{name: "taint value", args: []string{"--register-with-taints=a=b c:NoSchedule"}, want: []string{`invalid value "a=b c:NoSchedule" for --register-with-taints: value: `}},
		{name: "duplicate taint", args: []string{"--register-with-taints=a=1:NoSchedule,a=2:NoSchedule"}, want: []string{`invalid value "a=2:NoSchedule" for --register-with-taints: duplicates another taint with the same key and effect`}},
		{name: "provider", args: []string{"--provider="}, want: []string{`invalid value "" for --provider: must name a provider, such as wasmtime`}},
		{name: "provider blank", args: []string{"--provider= "}, want: []string{`invalid value "" for --provider: provider names must not be empty`}},
		{name: "provider empty name", args: []string{"--provider=wasmtime,,cri"}, want: []string{`invalid value "wasmtime,,cri" for --provider: provider names must not be empty`}},
		{
			name: "provider repeated",
			args: []string{"--provider=wasmtime,cri,wasmtime,cri,wasmtime"},
			want: []string{
				`invalid value "wasmtime,cri,wasmtime,cri,wasmtime" for --provider: must name each provider once: "wasmtime" is repeated`,
				`invalid value "wasmtime,cri,wasmtime,cri,wasmtime" for --provider: must name each provider once: "cri" is repeated`,
			},
		},
		{name: "provider from env", env: map[string]string{"KRUSTLET_PROVIDER": "a,a"}, want: []string{`invalid value "a,a" for --provider (from KRUSTLET_PROVIDER): must name each provider once: "a" is repeated`}},
		{
			name: "runtime handler names",
			args: []string{"--runtime-handlers=Fast=wasmtime,a.b=wasmtime,ok=wasmtime"},
			want: []string{
				`invalid value "Fast=wasmtime" for --runtime-handlers: handler must be a DNS-1123 label, as RuntimeClass.handler: a lowercase RFC 1123 label must consist of`,
				`invalid value "a.b=wasmtime" for --runtime-handlers: handler must be a DNS-1123 label, as RuntimeClass.handler: `,
			},
		},
		{
			name: "runtime handler provider not enabled",
			args: []string{"--provider=wasmtime,spin", "--runtime-handlers=fast=cri,none="},
			want: []string{
				`invalid value "fast=cri" for --runtime-handlers: provider "cri" is not enabled: --provider lists wasmtime,spin`,
				`invalid value "none=" for --runtime-handlers: provider "" is not enabled: --provider lists wasmtime,spin`,
			},
		},
		{
			name: "runtime handler from env",
			env:  map[string]string{"KRUSTLET_RUNTIME_HANDLERS": "fast=cri"},
			want: []string{`invalid value "fast=cri" for --runtime-handlers (from KRUSTLET_RUNTIME_HANDLERS): provider "cri" is not enabled: --provider lists wasmtime`},
		},
		{
			name: "insecure registries",
			args: []string{"--insecure-registries=https://r.io,r.io/path,r.io:0,r.io:,Bad_Host,localhost:5000,[::1]:5000,10.0.0.1"},
			want: []string{
				`invalid value "https://r.io" for --insecure-registries: must be host[:port], without scheme or path`,
				`invalid value "r.io/path" for --insecure-registries: must be host[:port], without scheme or path`,
				`invalid value "r.io:0" for --insecure-registries: must be host[:port], without scheme or path; port must be between 1 and 65535`,
				`invalid value "r.io:" for --insecure-registries: must be host[:port], without scheme or path; port must be between 1 and 65535`,
				`invalid value "Bad_Host" for --insecure-registries: must be host[:port], without scheme or path; host: `,
			},
		},
		{name: "reserved resource", args: []string{"--system-reserved=gpu=1"}, want: []string{`invalid value "gpu=1" for --system-reserved: resource must be one of cpu, memory, ephemeral-storage, pid`}},
		{name: "reserved negative", args: []string{"--kube-reserved=memory=-1Gi"}, want: []string{`invalid value "memory=-1Gi" for --kube-reserved: quantity must not be negative`}},
		{name: "reserved quantity", args: []string{"--kube-reserved=cpu=lots"}, want: []string{`invalid value "cpu=lots" for --kube-reserved: "lots" is not a quantity such as 100m or 256Mi`}},
		{name: "eviction signal", args: []string{"--eviction-hard=memory.free<1Gi"}, want: []string{`invalid value "memory.free<1Gi" for --eviction-hard: signal must be one of memory.available, nodefs.available, nodefs.inodesFree, imagefs.available, imagefs.inodesFree, pid.available`}},
		{name: "eviction negative", args: []string{"--eviction-hard=memory.available<-1Gi"}, want: []string{`invalid value "memory.available<-1Gi" for --eviction-hard: quantity must not be negative`}},
		{name: "eviction percentage", args: []string{"--eviction-hard=nodefs.available<150%"}, want: []string{`invalid value "nodefs.available<150%" for --eviction-hard: percentage must be between 0% and 100%`}},
		{name: "eviction bad percentage", args: []string{"--eviction-hard=nodefs.available<x%"}, want: []string{`invalid value "nodefs.available<x%" for --eviction-hard: "x%" is not a percentage`}},
		{name: "eviction bad quantity", args: []string{"--eviction-hard=nodefs.available<lots"}, want: []string{`invalid value "nodefs.available<lots" for --eviction-hard: "lots" is neither a quantity such as 100Mi nor a percentage such as 10%`}},
		{name: "gc high threshold", args: []string{"--image-gc-high-threshold=101"}, want: []string{`invalid value "101" for --image-gc-high-threshold: must be between 0 and 100`}},
		{name: "gc low threshold", args: []string{"--image-gc-low-threshold=-1"}, want: []string{`invalid value "-1" for --image-gc-low-threshold: must be between 0 and 100`}},
		{name: "gc low not below high", args: []string{"--image-gc-low-threshold=85"}, want: []string{`invalid value "85" for --image-gc-low-threshold: must be lower than --image-gc-high-threshold (85)`}},
		{name: "log size", args: []string{"--container-log-max-size=big"}, want: []string{`invalid value "big" for --container-log-max-size: must be a quantity such as 10Mi`}},
		{name: "log size zero", args: []string{"--container-log-max-size=0"}, want: []string{`invalid value "0" for --container-log-max-size: must be a positive quantity such as 10Mi`}},
		{name: "log files", args: []string{"--container-log-max-files=1"}, want: []string{`invalid value "1" for --container-log-max-files: must be at least 2`}},
		{name: "qps", args: []string{"--kube-api-qps=0"}, want: []string{`invalid value "0" for --kube-api-qps: must be greater than 0`}},
		{name: "burst", args: []string{"--kube-api-burst=-5"}, want: []string{`invalid value "-5" for --kube-api-burst: must be greater than 0`}},
		{name: "update frequency", args: []string{"--node-status-update-frequency=0s"}, want: []string{`invalid value "0s" for --node-status-update-frequency: must be a duration greater than 0, such as 10s`}},
		{name: "report frequency", args: []string{"--node-status-report-frequency=-1m"}, want: []string{`invalid value "-1m0s" for --node-status-report-frequency: must be a duration greater than 0, such as 10s`}},
		{name: "lease", args: []string{"--node-lease-duration-seconds=0"}, want: []string{`invalid value "0" for --node-lease-duration-seconds: must be greater than 0`}},
		{name: "shutdown grace period", args: []string{"--shutdown-grace-period=0"}, want: []string{`invalid value "0s" for --shutdown-grace-period: must be a duration greater than 0, such as 10s`}},
		{
			name: "sources are named",
			env:  map[string]string{"KRUSTLET_MAX_PODS": "-1"},
			file: "port: 70000\nauthorization:\n  mode: Nope\n",
			want: []string{
				`invalid value "70000" for --port (from config file field "port"): must be between 1 and 65535`,
				`invalid value "Nope" for --authorization-mode (from config file field "authorization.mode"): must be Webhook or AlwaysAllow`,
				`invalid value "-1" for --max-pods (from KRUSTLET_MAX_PODS): must be greater than 0`,
			},
		},
		{
			name: "krustlet document fields are named",
			file: "---\n" + krustletHeader + "providers: [a, a]\nruntimeHandlers:\n  fast: b\n",
			want: []string{
				`invalid value "a,a" for --provider (from config file field "providers"): must name each provider once: "a" is repeated`,
				`invalid value "fast=b" for --runtime-handlers (from config file field "runtimeHandlers"): provider "b" is not enabled: --provider lists a,a`,
			},
		},
		{
			name: "all errors are collected",
			args: []string{"--port=0", "--max-pods=0", "--address=x", "--kube-api-qps=0"},
			want: []string{
				`invalid value "x" for --address: must be an IP address`,
				`invalid value "0" for --port: must be between 1 and 65535`,
				`invalid value "0" for --max-pods: must be greater than 0`,
				`invalid value "0" for --kube-api-qps: must be greater than 0`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := tt.args
			if tt.file != "" {
				args = append([]string{"--config", writeFile(t, "kubelet.yaml", fileHeader+tt.file)}, args...)
			}
			_, _, err := loadArgs(t, args, tt.env)
			var got []string
			var agg utilerrors.Aggregate
			if errors.As(err, &agg) {
				for _, e := range agg.Errors() {
					got = append(got, e.Error())
				}
			} else if err != nil {
				got = []string{err.Error()}
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %d errors, want %d:\n%s", len(got), len(tt.want), strings.Join(got, "\n"))
			}
			for i := range got {
				if !strings.HasPrefix(got[i], tt.want[i]) {
					t.Errorf("error %d:\n got %s\nwant %s", i, got[i], tt.want[i])
				}
			}
		})
	}
}

// TestFlagSyntaxErrors covers values rejected while the flags are parsed.
func TestFlagSyntaxErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"taint without effect", []string{"--register-with-taints=a=b"}, `invalid argument "a=b" for "--register-with-taints" flag: taint "a=b" has no effect, want key=value:Effect or key:Effect`},
		{"eviction operator", []string{"--eviction-hard=memory.available>1Gi"}, `invalid argument "memory.available>1Gi" for "--eviction-hard" flag: malformed pair, expect string<string`},
		{"label without value", []string{"--node-labels=a"}, `invalid argument "a" for "--node-labels" flag: malformed pair, expect string=string`},
		{"port not a number", []string{"--port=http"}, `invalid argument "http" for "--port" flag`},
		{"runtime handler without provider", []string{"--runtime-handlers=fast"}, `invalid argument "fast" for "--runtime-handlers" flag: malformed pair, expect string=string`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := newTestFlagSet()
			err := fs.Parse(tt.args)
			if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
				t.Fatalf("error %v, want prefix %q", err, tt.want)
			}
		})
	}
}

func TestValidateHandBuiltConfig(t *testing.T) {
	cfg := mustLoad(t, nil, nil)
	if err := cfg.Validate(); err != nil {
		t.Fatalf("a loaded Config does not validate: %v", err)
	}
	zero := &Config{}
	err := zero.Validate()
	if err == nil {
		t.Fatal("the zero Config validates")
	}
	for _, flag := range []string{"--node-name", "--address", "--port", "--provider", "--max-pods", "--kube-api-qps", "--shutdown-grace-period"} {
		if !strings.Contains(err.Error(), flag) {
			t.Errorf("error does not name %s: %v", flag, err)
		}
	}
}
