package config

import (
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestConfigFileDecoding(t *testing.T) {
	tests := []struct {
		name    string
		file    string // file name; the extension does not matter
		text    string
		wantErr []string // substrings of the error
	}{
		{
			name: "yaml",
			file: "kubelet.yaml",
			text: fileHeader + "port: 10251\n",
		},
		{
			name: "json",
			file: "kubelet.json",
			text: `{"apiVersion": "kubelet.config.k8s.io/v1beta1", "kind": "KubeletConfiguration", "port": 10251}`,
		},
		{
			name:    "unknown field",
			file:    "kubelet.yaml",
			text:    fileHeader + "port: 10251\nprot: 1\n",
			wantErr: []string{"kubelet.yaml", `unknown field "prot"`},
		},
		{
			name:    "unknown nested field",
			file:    "kubelet.yaml",
			text:    fileHeader + "authentication:\n  anonymous:\n    enable: true\n",
			wantErr: []string{`unknown field "authentication.anonymous.enable"`},
		},
		{
			name:    "field names are case sensitive",
			file:    "kubelet.yaml",
			text:    fileHeader + "Port: 10251\n",
			wantErr: []string{`unknown field "Port"`},
		},
		{
			name:    "duplicate field",
			file:    "kubelet.yaml",
			text:    fileHeader + "port: 10251\nport: 10252\n",
			wantErr: []string{`"port"`, "already set"},
		},
		{
			name:    "wrong type",
			file:    "kubelet.yaml",
			text:    fileHeader + "port: high\n",
			wantErr: []string{"kubelet.yaml", "port"},
		},
		{
			name:    "wrong apiVersion",
			file:    "kubelet.yaml",
			text:    "apiVersion: kubelet.config.k8s.io/v1\nkind: KubeletConfiguration\n",
			wantErr: []string{`apiVersion "kubelet.config.k8s.io/v1" kind "KubeletConfiguration" is not supported: want apiVersion "kubelet.config.k8s.io/v1beta1" kind "KubeletConfiguration"`},
		},
		{
			name:    "wrong kind",
			file:    "kubelet.yaml",
			text:    "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: CredentialProviderConfig\n",
			wantErr: []string{`kind "CredentialProviderConfig" is not supported`},
		},
		{
			name:    "missing type",
			file:    "kubelet.yaml",
			text:    "port: 10251\n",
			wantErr: []string{`apiVersion "" kind "" is not supported`},
		},
		{
			name:    "not yaml",
			file:    "kubelet.yaml",
			text:    "port: [\n",
			wantErr: []string{"kubelet.yaml"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeFile(t, tt.file, tt.text)
			cfg, _, err := loadArgs(t, []string{"--config", path}, nil)
			if len(tt.wantErr) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				assertEqual(t, cfg.Port, int32(10251))
				return
			}
			if err == nil {
				t.Fatalf("no error, want one containing %q", tt.wantErr)
			}
			for _, want := range tt.wantErr {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not contain %q", err, want)
				}
			}
		})
	}
}

func TestConfigFileMissing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "absent.yaml")
	_, _, err := loadArgs(t, []string{"--config", path}, nil)
	if err == nil || !strings.Contains(err.Error(), "reading config file") || !strings.Contains(err.Error(), "absent.yaml") {
		t.Fatalf("error %v, want a read error naming the file", err)
	}
}

func TestConfigFileWarnings(t *testing.T) {
	tests := []struct {
		name string
		text string
		want []string
	}{
		{
			name: "only used fields",
			text: "port: 10251\nmaxPods: 20\nauthentication:\n  webhook:\n    enabled: true\nauthorization:\n  mode: AlwaysAllow\n",
		},
		{
			name: "fields that do not apply",
			text: "staticPodPath: /etc/kubernetes/manifests\ncontainerRuntimeEndpoint: unix:///run/containerd/containerd.sock\nserializeImagePulls: false\n" +
				"authentication:\n  webhook:\n    enabled: true\n    cacheTTL: 2m\nauthorization:\n  webhook:\n    cacheAuthorizedTTL: 5m\n" +
				"featureGates:\n  Foo: true\nfailSwapOn: false\nlogging:\n  format: json\n",
			want: []string{
				`config file field "staticPodPath" does not apply to krustlet and is ignored`,
				`config file field "authentication.webhook.cacheTTL" does not apply to krustlet and is ignored`,
				`config file field "authorization.webhook.cacheAuthorizedTTL" does not apply to krustlet and is ignored`,
				`config file field "serializeImagePulls" does not apply to krustlet and is ignored`,
				`config file field "featureGates" does not apply to krustlet and is ignored`,
				`config file field "failSwapOn" does not apply to krustlet and is ignored`,
				`config file field "logging" does not apply to krustlet and is ignored`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeFile(t, "kubelet.yaml", fileHeader+tt.text)
			_, warnings, err := loadArgs(t, []string{"--config", path}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(warnings, tt.want) {
				t.Errorf("warnings:\n got %q\nwant %q", warnings, tt.want)
			}
		})
	}
}

func TestConfigFileFields(t *testing.T) {
	dir := t.TempDir()
	text := fileHeader + `address: 10.0.0.9
port: 10300
healthzPort: 0
healthzBindAddress: 0.0.0.0
tlsCertFile: certs/tls.crt
tlsPrivateKeyFile: /abs/tls.key
maxPods: 7
registerNode: false
registerWithTaints:
- key: edge
  value: "true"
  effect: NoSchedule
systemReserved:
  memory: 1Gi
kubeReserved:
  cpu: 200m
evictionHard:
  memory.available: 200Mi
imageGCHighThresholdPercent: 90
imageGCLowThresholdPercent: 70
containerLogMaxSize: 5Mi
containerLogMaxFiles: 3
kubeAPIQPS: 5
kubeAPIBurst: 10
nodeStatusUpdateFrequency: 1m
nodeStatusReportFrequency: 10m
nodeLeaseDurationSeconds: 60
rotateCertificates: false
serverTLSBootstrap: false
authentication:
  anonymous:
    enabled: true
  x509:
    clientCAFile: ../ca.crt
  webhook:
    enabled: false
authorization:
  mode: AlwaysAllow
enableDebuggingHandlers: false
shutdownGracePeriod: 45s
`
	path := filepath.Join(dir, "etc", "kubelet.yaml")
	mustWrite(t, path, text)
	cfg := mustLoad(t, []string{"--config", path}, nil)

	got := map[string]any{
		"address":                   cfg.Address.String(),
		"port":                      cfg.Port,
		"healthzPort":               cfg.HealthzPort,
		"healthzBindAddress":        cfg.HealthzBindAddress.String(),
		"tlsCertFile":               cfg.TLSCertFile,
		"tlsPrivateKeyFile":         cfg.TLSPrivateKeyFile,
		"maxPods":                   cfg.MaxPods,
		"registerNode":              cfg.RegisterNode,
		"registerWithTaints":        cfg.RegisterWithTaints[0].ToString(),
		"systemReserved":            cfg.SystemReserved.Memory().String(),
		"kubeReserved":              cfg.KubeReserved.Cpu().String(),
		"evictionHard":              string(cfg.EvictionHard[0].Signal) + "<" + cfg.EvictionHard[0].Quantity.String(),
		"imageGCHigh":               cfg.ImageGCHighThresholdPercent,
		"imageGCLow":                cfg.ImageGCLowThresholdPercent,
		"containerLogMaxSize":       cfg.ContainerLogMaxSize.String(),
		"containerLogMaxFiles":      cfg.ContainerLogMaxFiles,
		"kubeAPIQPS":                cfg.KubeAPIQPS,
		"kubeAPIBurst":              cfg.KubeAPIBurst,
		"nodeStatusUpdateFrequency": cfg.NodeStatusUpdateFrequency.String(),
		"nodeStatusReportFrequency": cfg.NodeStatusReportFrequency.String(),
		"nodeLeaseDurationSeconds":  cfg.NodeLeaseDurationSeconds,
		"rotateCertificates":        cfg.RotateCertificates,
		"serverTLSBootstrap":        cfg.RotateServerCertificates,
		"anonymous":                 cfg.AnonymousAuth,
		"clientCAFile":              cfg.ClientCAFile,
		"webhook":                   cfg.AuthenticationTokenWebhook,
		"authorizationMode":         string(cfg.AuthorizationMode),
		"enableDebuggingHandlers":   cfg.EnableDebuggingHandlers,
		"shutdownGracePeriod":       cfg.ShutdownGracePeriod.String(),
	}
	want := map[string]any{
		"address":                   "10.0.0.9",
		"port":                      int32(10300),
		"healthzPort":               int32(0),
		"healthzBindAddress":        "0.0.0.0",
		"tlsCertFile":               filepath.Join(dir, "etc", "certs", "tls.crt"),
		"tlsPrivateKeyFile":         "/abs/tls.key",
		"maxPods":                   int32(7),
		"registerNode":              false,
		"registerWithTaints":        "edge=true:NoSchedule",
		"systemReserved":            "1Gi",
		"kubeReserved":              "200m",
		"evictionHard":              "memory.available<200Mi",
		"imageGCHigh":               int32(90),
		"imageGCLow":                int32(70),
		"containerLogMaxSize":       "5Mi",
		"containerLogMaxFiles":      int32(3),
		"kubeAPIQPS":                int32(5),
		"kubeAPIBurst":              int32(10),
		"nodeStatusUpdateFrequency": "1m0s",
		"nodeStatusReportFrequency": "10m0s",
		"nodeLeaseDurationSeconds":  int32(60),
		"rotateCertificates":        false,
		"serverTLSBootstrap":        false,
		"anonymous":                 true,
		"clientCAFile":              filepath.Join(dir, "ca.crt"),
		"webhook":                   false,
		"authorizationMode":         "AlwaysAllow",
		"enableDebuggingHandlers":   false,
		"shutdownGracePeriod":       "45s",
	}
	for k, w := range want {
		t.Run(k, func(t *testing.T) {
			if !reflect.DeepEqual(got[k], w) {
				t.Errorf("got %v (%T), want %v (%T)", got[k], got[k], w, w)
			}
		})
	}
}

// TestConfigFileRelativeToCWD shows that a relative --config resolves the
// paths in it against its own directory, not the working directory.
func TestConfigFileRelativeToCWD(t *testing.T) {
	dir := t.TempDir()
	mustWrite(t, filepath.Join(dir, "conf", "kubelet.yaml"), fileHeader+"tlsCertFile: tls.crt\ntlsPrivateKeyFile: tls.key\n")
	t.Chdir(dir)
	cfg := mustLoad(t, []string{"--config", "conf/kubelet.yaml"}, nil)
	assertEqual(t, cfg.TLSCertFile, filepath.Join("conf", "tls.crt"))
	assertEqual(t, cfg.TLSPrivateKeyFile, filepath.Join("conf", "tls.key"))
}

const krustletHeader = "apiVersion: krustlet.dev/v1alpha1\nkind: KrustletConfiguration\n"

func TestConfigFileDocuments(t *testing.T) {
	tests := []struct {
		name          string
		text          string
		wantPort      int32
		wantProviders []string
		wantHandlers  map[string]string
		wantErr       []string // substrings of the error
	}{
		{
			name:     "kubelet document alone",
			text:     fileHeader + "port: 10251\n",
			wantPort: 10251, wantProviders: []string{"wasmtime"},
		},
		{
			name:     "krustlet document alone",
			text:     krustletHeader + "providers: [cri, wasmtime]\nruntimeHandlers:\n  fast: wasmtime\n",
			wantPort: 10250, wantProviders: []string{"cri", "wasmtime"}, wantHandlers: map[string]string{"fast": "wasmtime"},
		},
		{
			name:     "kubelet first",
			text:     fileHeader + "port: 10251\n---\n" + krustletHeader + "providers: [cri]\n",
			wantPort: 10251, wantProviders: []string{"cri"},
		},
		{
			name:     "krustlet first, separators and comments around",
			text:     "---\n# node settings\n" + krustletHeader + "providers: [cri]\n---\n# kubelet settings\n" + fileHeader + "port: 10251\n---\n# end\n",
			wantPort: 10251, wantProviders: []string{"cri"},
		},
		{
			name:     "empty krustlet fields are not set",
			text:     krustletHeader + "providers: []\nruntimeHandlers: {}\n",
			wantPort: 10250, wantProviders: []string{"wasmtime"},
		},
		{
			name:    "unknown krustlet field",
			text:    fileHeader + "---\n" + krustletHeader + "provider: [cri]\n",
			wantErr: []string{"kubelet.yaml, document 2: KrustletConfiguration: ", `unknown field "provider"`},
		},
		{
			name:    "duplicate krustlet field",
			text:    krustletHeader + "providers: [a]\nproviders: [b]\n",
			wantErr: []string{"KrustletConfiguration: ", `"providers"`, "already set"},
		},
		{
			name:    "wrong krustlet type",
			text:    krustletHeader + "providers: cri\n",
			wantErr: []string{"KrustletConfiguration: ", "providers"},
		},
		{
			name: "unknown apiVersion",
			text: fileHeader + "---\napiVersion: krustlet.dev/v1\nkind: KrustletConfiguration\n",
			wantErr: []string{`kubelet.yaml, document 2: apiVersion "krustlet.dev/v1" kind "KrustletConfiguration" is not supported: ` +
				`want apiVersion "kubelet.config.k8s.io/v1beta1" kind "KubeletConfiguration" or apiVersion "krustlet.dev/v1alpha1" kind "KrustletConfiguration"`},
		},
		{
			name:    "unknown kind",
			text:    "apiVersion: krustlet.dev/v1alpha1\nkind: ProviderConfiguration\n",
			wantErr: []string{`apiVersion "krustlet.dev/v1alpha1" kind "ProviderConfiguration" is not supported: want`},
		},
		{
			name:    "two kubelet documents",
			text:    fileHeader + "port: 1\n---\n" + fileHeader + "port: 2\n",
			wantErr: []string{"document 2: a second KubeletConfiguration: want at most one document of each kind"},
		},
		{
			name:    "two krustlet documents",
			text:    krustletHeader + "---\n" + fileHeader + "---\n" + krustletHeader,
			wantErr: []string{"document 3: a second KrustletConfiguration: want at most one document of each kind"},
		},
		{
			name:    "no document",
			text:    "# nothing yet\n",
			wantErr: []string{"kubelet.yaml holds no document: want a KubeletConfiguration, a KrustletConfiguration or both"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeFile(t, "kubelet.yaml", tt.text)
			cfg, warnings, err := loadArgs(t, []string{"--config", path}, nil)
			if len(tt.wantErr) > 0 {
				if err == nil {
					t.Fatalf("no error, want one containing %q", tt.wantErr)
				}
				for _, want := range tt.wantErr {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("error %q does not contain %q", err, want)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(warnings) > 0 {
				t.Errorf("warnings %q", warnings)
			}
			assertEqual(t, cfg.Port, tt.wantPort)
			if !reflect.DeepEqual(cfg.Providers, tt.wantProviders) {
				t.Errorf("providers %q, want %q", cfg.Providers, tt.wantProviders)
			}
			if !reflect.DeepEqual(cfg.RuntimeHandlers, tt.wantHandlers) {
				t.Errorf("runtime handlers %v, want %v", cfg.RuntimeHandlers, tt.wantHandlers)
			}
		})
	}
}
