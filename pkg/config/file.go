package config

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	kjson "k8s.io/apimachinery/pkg/runtime/serializer/json"
	kubeletv1beta1 "k8s.io/kubelet/config/v1beta1"
	"sigs.k8s.io/yaml"
)

// readConfigFile reads a KubeletConfiguration strictly: an unknown or
// duplicate field is an error, as is any other apiVersion or kind. It also
// returns the top-level fields present in the file, which tells a false
// non-pointer bool apart from an absent one.
func readConfigFile(path string) (*kubeletv1beta1.KubeletConfiguration, map[string]bool, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("reading config file: %w", err)
	}
	jsonData, err := yaml.YAMLToJSON(data)
	if err != nil {
		return nil, nil, fmt.Errorf("config file %s: %w", path, err)
	}
	gvk, err := kjson.DefaultMetaFactory.Interpret(jsonData)
	if err != nil {
		return nil, nil, fmt.Errorf("config file %s: %w", path, err)
	}
	want := kubeletv1beta1.SchemeGroupVersion.WithKind("KubeletConfiguration")
	if *gvk != want {
		return nil, nil, fmt.Errorf("config file %s: apiVersion %q kind %q is not supported: want apiVersion %q kind %q",
			path, gvk.GroupVersion().String(), gvk.Kind, want.GroupVersion().String(), want.Kind)
	}

	scheme := runtime.NewScheme()
	if err := kubeletv1beta1.AddToScheme(scheme); err != nil {
		return nil, nil, fmt.Errorf("building the config file scheme: %w", err)
	}
	decoder := kjson.NewSerializerWithOptions(kjson.DefaultMetaFactory, scheme, scheme,
		kjson.SerializerOptions{Yaml: true, Strict: true})
	kc := &kubeletv1beta1.KubeletConfiguration{}
	if _, _, err := decoder.Decode(data, nil, kc); err != nil {
		return nil, nil, fmt.Errorf("config file %s: %w", path, err)
	}

	var fields map[string]json.RawMessage
	if err := json.Unmarshal(jsonData, &fields); err != nil {
		return nil, nil, fmt.Errorf("config file %s: %w", path, err)
	}
	present := make(map[string]bool, len(fields))
	for k := range fields {
		present[k] = true
	}
	return kc, present, nil
}

// fileValue maps one KubeletConfiguration field onto a flag.
type fileValue struct {
	// field is the field's path in the file, e.g. "authentication.x509.clientCAFile".
	field string
	// flag is the canonical flag the field sets.
	flag string
	// set reports whether the file sets the field. Following the kubelet, a
	// zero or nil field is not set, except the non-pointer bools
	// rotateCertificates and serverTLSBootstrap, which are set when present
	// so that a file can turn them off.
	set bool
	// apply copies the field into the options.
	apply func(o *Options)
}

// fileValues lists every field krustlet uses, set or not. dir is the file's
// directory, against which relative paths resolve.
func fileValues(kc *kubeletv1beta1.KubeletConfiguration, dir string, present map[string]bool) []fileValue {
	path := func(p string) string {
		if p == "" || filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(dir, p)
	}
	return []fileValue{
		{"address", "address", kc.Address != "", func(o *Options) { o.Address = kc.Address }},
		{"port", "port", kc.Port != 0, func(o *Options) { o.Port = kc.Port }},
		{"healthzPort", "healthz-port", kc.HealthzPort != nil, func(o *Options) { o.HealthzPort = *kc.HealthzPort }},
		{"healthzBindAddress", "healthz-bind-address", kc.HealthzBindAddress != "", func(o *Options) { o.HealthzBindAddress = kc.HealthzBindAddress }},
		{"tlsCertFile", "tls-cert-file", kc.TLSCertFile != "", func(o *Options) { o.TLSCertFile = path(kc.TLSCertFile) }},
		{"tlsPrivateKeyFile", "tls-private-key-file", kc.TLSPrivateKeyFile != "", func(o *Options) { o.TLSPrivateKeyFile = path(kc.TLSPrivateKeyFile) }},
		{"maxPods", "max-pods", kc.MaxPods != 0, func(o *Options) { o.MaxPods = kc.MaxPods }},
		{"registerNode", "register-node", kc.RegisterNode != nil, func(o *Options) { o.RegisterNode = *kc.RegisterNode }},
		{"registerWithTaints", "register-with-taints", len(kc.RegisterWithTaints) > 0, func(o *Options) {
			o.RegisterWithTaints = append([]v1.Taint(nil), kc.RegisterWithTaints...)
		}},
		{"systemReserved", "system-reserved", len(kc.SystemReserved) > 0, func(o *Options) { o.SystemReserved = copyMap(kc.SystemReserved) }},
		{"kubeReserved", "kube-reserved", len(kc.KubeReserved) > 0, func(o *Options) { o.KubeReserved = copyMap(kc.KubeReserved) }},
		{"evictionHard", "eviction-hard", len(kc.EvictionHard) > 0, func(o *Options) { o.EvictionHard = copyMap(kc.EvictionHard) }},
		{"imageGCHighThresholdPercent", "image-gc-high-threshold", kc.ImageGCHighThresholdPercent != nil, func(o *Options) {
			o.ImageGCHighThresholdPercent = *kc.ImageGCHighThresholdPercent
		}},
		{"imageGCLowThresholdPercent", "image-gc-low-threshold", kc.ImageGCLowThresholdPercent != nil, func(o *Options) {
			o.ImageGCLowThresholdPercent = *kc.ImageGCLowThresholdPercent
		}},
		{"containerLogMaxSize", "container-log-max-size", kc.ContainerLogMaxSize != "", func(o *Options) { o.ContainerLogMaxSize = kc.ContainerLogMaxSize }},
		{"containerLogMaxFiles", "container-log-max-files", kc.ContainerLogMaxFiles != nil, func(o *Options) { o.ContainerLogMaxFiles = *kc.ContainerLogMaxFiles }},
		{"kubeAPIQPS", "kube-api-qps", kc.KubeAPIQPS != nil, func(o *Options) { o.KubeAPIQPS = *kc.KubeAPIQPS }},
		{"kubeAPIBurst", "kube-api-burst", kc.KubeAPIBurst != 0, func(o *Options) { o.KubeAPIBurst = kc.KubeAPIBurst }},
		{"nodeStatusUpdateFrequency", "node-status-update-frequency", kc.NodeStatusUpdateFrequency.Duration != 0, func(o *Options) {
			o.NodeStatusUpdateFrequency = kc.NodeStatusUpdateFrequency.Duration
		}},
		{"nodeStatusReportFrequency", "node-status-report-frequency", kc.NodeStatusReportFrequency.Duration != 0, func(o *Options) {
			o.NodeStatusReportFrequency = kc.NodeStatusReportFrequency.Duration
		}},
		{"nodeLeaseDurationSeconds", "node-lease-duration-seconds", kc.NodeLeaseDurationSeconds != 0, func(o *Options) {
			o.NodeLeaseDurationSeconds = kc.NodeLeaseDurationSeconds
		}},
		{"rotateCertificates", "rotate-certificates", kc.RotateCertificates || present["rotateCertificates"], func(o *Options) {
			o.RotateCertificates = kc.RotateCertificates
		}},
		{"serverTLSBootstrap", "rotate-server-certificates", kc.ServerTLSBootstrap || present["serverTLSBootstrap"], func(o *Options) {
			o.RotateServerCertificates = kc.ServerTLSBootstrap
		}},
		{"authentication.anonymous.enabled", "anonymous-auth", kc.Authentication.Anonymous.Enabled != nil, func(o *Options) {
			o.AnonymousAuth = *kc.Authentication.Anonymous.Enabled
		}},
		{"authentication.x509.clientCAFile", "client-ca-file", kc.Authentication.X509.ClientCAFile != "", func(o *Options) {
			o.ClientCAFile = path(kc.Authentication.X509.ClientCAFile)
		}},
		{"authentication.webhook.enabled", "authentication-token-webhook", kc.Authentication.Webhook.Enabled != nil, func(o *Options) {
			o.AuthenticationTokenWebhook = *kc.Authentication.Webhook.Enabled
		}},
		{"authorization.mode", "authorization-mode", kc.Authorization.Mode != "", func(o *Options) { o.AuthorizationMode = string(kc.Authorization.Mode) }},
		{"enableDebuggingHandlers", "enable-debugging-handlers", kc.EnableDebuggingHandlers != nil, func(o *Options) {
			o.EnableDebuggingHandlers = *kc.EnableDebuggingHandlers
		}},
		{"shutdownGracePeriod", "shutdown-grace-period", kc.ShutdownGracePeriod.Duration != 0, func(o *Options) {
			o.ShutdownGracePeriod = kc.ShutdownGracePeriod.Duration
		}},
	}
}

// unusedFieldWarnings returns one warning per field that is set in kc but
// that krustlet does not use. It descends into the structs of the
// KubeletConfiguration API (authentication, authorization, ...) so that, for
// example, authentication.webhook.cacheTTL is named precisely.
func unusedFieldWarnings(kc *kubeletv1beta1.KubeletConfiguration) []string {
	used := map[string]bool{}
	for _, fv := range fileValues(kc, "", nil) {
		used[fv.field] = true
	}
	apiPkg := reflect.TypeFor[kubeletv1beta1.KubeletConfiguration]().PkgPath()
	var warnings []string
	var walk func(v reflect.Value, prefix string)
	walk = func(v reflect.Value, prefix string) {
		t := v.Type()
		for i := range t.NumField() {
			sf := t.Field(i)
			if sf.Anonymous || !sf.IsExported() {
				continue // TypeMeta
			}
			fv := v.Field(i)
			name, _, _ := strings.Cut(sf.Tag.Get("json"), ",")
			if name == "" || name == "-" || fv.IsZero() {
				continue
			}
			p := prefix + name
			switch {
			case used[p]:
			case fv.Kind() == reflect.Struct && sf.Type.PkgPath() == apiPkg:
				walk(fv, p+".")
			default:
				warnings = append(warnings, fmt.Sprintf("config file field %q does not apply to krustlet and is ignored", p))
			}
		}
	}
	walk(reflect.ValueOf(kc).Elem(), "")
	return warnings
}

func copyMap(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
