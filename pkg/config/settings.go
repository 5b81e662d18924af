package config

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/api/validate/content"
)

// setting declares one node setting. The flags, the environment variables,
// the config file, the validation and the generated flag reference are all
// driven by the settings table.
type setting struct {
	// flag is the canonical flag name. The setting's environment variable
	// is EnvVarName(flag), and error messages name the flag.
	flag string
	// aliases are krustlet's old names for the flag: hidden, deprecated,
	// each read from its own environment variable too.
	aliases []string
	// usage is the flag's help.
	usage string
	// defaultDoc documents a default that Loader.derive computes from other
	// settings, which the flag's own default cannot show.
	defaultDoc string
	// file is the config file field that sets the setting; zero when the
	// file cannot.
	file fileField
	// value holds the setting from the flag to Config and gives its
	// default: field for a Config field of the flag's type, parsed for one
	// that needs parsing.
	value func(*Options) value
	// check validates the setting in a Config, calling bad for each
	// problem; nil when every value is accepted.
	check func(c *Config, bad report)
}

// settings declares every node setting once. To add a setting, add its
// field to Config and an entry here; its environment variable, its line in
// the flag reference (krustlet flags --markdown) and its config file field
// follow. The order of the entries is the order of the error messages.
var settings = []setting{
	{flag: "config", usage: "Path to a kubelet.config.k8s.io/v1beta1 KubeletConfiguration file (YAML or JSON), which may also hold a krustlet.dev/v1alpha1 KrustletConfiguration document (providers, runtimeHandlers) after a \"---\" line. Flags and KRUSTLET_* environment variables override its values; relative paths in it are relative to its directory.",
		value: field("", func(c *Config) *string { return &c.ConfigFile })},
	{flag: "kubeconfig", defaultDoc: "<data-dir>/kubeconfig", usage: "Path to the kubeconfig used to talk to the API server. Defaults to <data-dir>/kubeconfig.",
		value: field("", func(c *Config) *string { return &c.Kubeconfig })},
	{flag: "bootstrap-kubeconfig", aliases: []string{"bootstrap-file"}, usage: "Path to a kubeconfig used to request a client certificate when --kubeconfig does not exist yet.",
		value: field("", func(c *Config) *string { return &c.BootstrapKubeconfig })},
	{flag: "node-name", defaultDoc: "<hostname>", usage: "Name of the Node object. Defaults to --hostname-override, or the lowercased host name.",
		value: field("", func(c *Config) *string { return &c.NodeName }),
		check: func(c *Config, bad report) {
			if errs := content.IsDNS1123Subdomain(c.NodeName); len(errs) > 0 {
				bad(c.NodeName, "must be a valid DNS-1123 subdomain: "+strings.Join(errs, "; "))
			}
		}},
	{flag: "hostname-override", aliases: []string{"hostname"}, usage: "Host name to report instead of the machine's.",
		value: parsed("", func(c *Config, v string, _ report) { c.Hostname = strings.ToLower(strings.TrimSpace(v)) })},
	{flag: "node-ip", usage: "Comma-separated IP addresses of the node, at most one IPv4 and one IPv6. Detected when empty.",
		value: parsed("", landNodeIPs),
		check: checkNodeIPs},

	{flag: "address", aliases: []string{"addr"}, file: kubeletField("address"), usage: "IP address the node server listens on.",
		value: parsed(DefaultAddress, func(c *Config, v string, bad report) { c.Address = parseIP(v, bad) }),
		check: func(c *Config, bad report) { checkIP(c.Address, bad) }},
	{flag: "port", file: kubeletField("port"), usage: "Port of the node server.",
		value: field(DefaultPort, func(c *Config) *int32 { return &c.Port }),
		check: func(c *Config, bad report) { checkPort(c.Port, 1, bad) }},
	{flag: "healthz-port", file: kubeletField("healthzPort"), usage: "Port of the healthz endpoint; 0 disables it.",
		value: field(DefaultHealthzPort, func(c *Config) *int32 { return &c.HealthzPort }),
		check: func(c *Config, bad report) { checkPort(c.HealthzPort, 0, bad) }},
	{flag: "healthz-bind-address", file: kubeletField("healthzBindAddress"), usage: "IP address the healthz endpoint listens on.",
		value: parsed(DefaultHealthzBindAddress, func(c *Config, v string, bad report) { c.HealthzBindAddress = parseIP(v, bad) }),
		check: func(c *Config, bad report) { checkIP(c.HealthzBindAddress, bad) }},

	{flag: "data-dir", usage: "Directory of the node agent's state.",
		value: field(DefaultDataDir, func(c *Config) *string { return &c.DataDir }),
		check: func(c *Config, bad report) {
			if c.DataDir == "" {
				bad("", "must be a directory")
			}
		}},
	{flag: "cert-dir", defaultDoc: "<data-dir>/pki", usage: "Directory of the node's certificates. Defaults to <data-dir>/pki.",
		value: field("", func(c *Config) *string { return &c.CertDir })},
	{flag: "tls-cert-file", aliases: []string{"cert-file"}, file: kubeletPathField("tlsCertFile"), usage: "Serving certificate (PEM) of the node server; requires --tls-private-key-file. When unset, the serving certificate is requested from the cluster (--rotate-server-certificates) or self-signed.",
		value: field("", func(c *Config) *string { return &c.TLSCertFile }),
		check: func(c *Config, bad report) {
			if c.TLSCertFile == "" && c.TLSPrivateKeyFile != "" {
				bad("", "must be set when --tls-private-key-file is set")
			}
		}},
	{flag: "tls-private-key-file", aliases: []string{"private-key-file"}, file: kubeletPathField("tlsPrivateKeyFile"), usage: "Private key (PEM) of --tls-cert-file.",
		value: field("", func(c *Config) *string { return &c.TLSPrivateKeyFile }),
		check: func(c *Config, bad report) {
			if c.TLSPrivateKeyFile == "" && c.TLSCertFile != "" {
				bad("", "must be set when --tls-cert-file is set")
			}
		}},
	{flag: "client-ca-file", file: kubeletPathField("authentication.x509.clientCAFile"), usage: "CA bundle (PEM) that authenticates client certificates.",
		value: field("", func(c *Config) *string { return &c.ClientCAFile })},
	{flag: "anonymous-auth", file: kubeletField("authentication.anonymous.enabled"), usage: "Allow unauthenticated requests to the node server.",
		value: field(false, func(c *Config) *bool { return &c.AnonymousAuth })},
	{flag: "authentication-token-webhook", file: kubeletField("authentication.webhook.enabled"), usage: "Authenticate bearer tokens with the TokenReview API.",
		value: field(true, func(c *Config) *bool { return &c.AuthenticationTokenWebhook })},
	{flag: "authorization-mode", file: kubeletField("authorization.mode"), usage: "Authorization of node server requests: Webhook (SubjectAccessReview) or AlwaysAllow.",
		value: parsed(string(AuthorizationModeWebhook), func(c *Config, v string, _ report) { c.AuthorizationMode = AuthorizationMode(v) }),
		check: func(c *Config, bad report) {
			if m := c.AuthorizationMode; m != AuthorizationModeWebhook && m != AuthorizationModeAlwaysAllow {
				bad(string(m), fmt.Sprintf("must be %s or %s", AuthorizationModeWebhook, AuthorizationModeAlwaysAllow))
			}
		}},
	{flag: "enable-debugging-handlers", file: kubeletField("enableDebuggingHandlers"), usage: "Serve container logs and /debug/pprof on the node server.",
		value: field(true, func(c *Config) *bool { return &c.EnableDebuggingHandlers })},

	{flag: "max-pods", file: kubeletField("maxPods"), usage: "Number of pods the node accepts.",
		value: field(DefaultMaxPods, func(c *Config) *int32 { return &c.MaxPods }),
		check: func(c *Config, bad report) { checkPositive(c.MaxPods, bad) }},
	{flag: "node-labels", usage: "Labels added to the Node when it registers (key=value,...). Labels in the kubernetes.io and k8s.io namespaces are limited to the kubelet's allowed set.",
		value: field(nil, func(c *Config) *map[string]string { return &c.NodeLabels }),
		check: checkNodeLabels},
	{flag: "register-with-taints", file: kubeletField("registerWithTaints"), usage: "Taints added to the Node when it registers (key=value:Effect or key:Effect, comma-separated).",
		value: field(nil, func(c *Config) *[]v1.Taint { return &c.RegisterWithTaints }),
		check: checkTaints},
	{flag: "register-node", file: kubeletField("registerNode"), usage: "Create the Node object.",
		value: field(true, func(c *Config) *bool { return &c.RegisterNode })},

	{flag: "provider", file: krustletField("providers"), usage: "Runtime providers enabled on the node, comma-separated. The first runs the pods that have no RuntimeClass; each serves the RuntimeClass handler named after it.",
		value: parsed([]string{DefaultProvider}, func(c *Config, v []string, _ report) { c.Providers = trimSpace(v) }),
		check: checkProviders},
	{flag: "runtime-handlers", file: krustletField("runtimeHandlers"), usage: "More RuntimeClass handlers, each run by a provider of --provider (handler=provider,...). An entry for a provider's own name replaces its handler.",
		value: field(nil, func(c *Config) *map[string]string { return &c.RuntimeHandlers }),
		check: checkRuntimeHandlers},
	{flag: "insecure-registries", usage: "Registries (host[:port], comma-separated) reached over plain HTTP.",
		value: parsed([]string(nil), func(c *Config, v []string, _ report) { c.InsecureRegistries = trimmed(v) }),
		check: func(c *Config, bad report) {
			for _, r := range c.InsecureRegistries {
				if reason := checkRegistryHost(r); reason != "" {
					bad(r, reason)
				}
			}
		}},
	{flag: "registry-config", usage: "Docker config.json with registry credentials.",
		value: field("", func(c *Config) *string { return &c.RegistryConfig })},
	{flag: "registry-ca-file", usage: "CA bundle (PEM) trusted for registries, in addition to the system roots.",
		value: field("", func(c *Config) *string { return &c.RegistryCAFile })},
	{flag: "x-allow-local-modules", usage: "Experimental: let pods use modules from the local file system.",
		value: field(false, func(c *Config) *bool { return &c.AllowLocalModules })},
	{flag: "container-runtime-endpoint", file: kubeletField("containerRuntimeEndpoint"), usage: "CRI socket of the cri provider's container runtime (unix:///path).",
		value: field(DefaultContainerRuntimeEndpoint, func(c *Config) *string { return &c.ContainerRuntimeEndpoint }),
		check: func(c *Config, bad report) { checkEndpoint(c.ContainerRuntimeEndpoint, bad) }},
	{flag: "image-service-endpoint", file: kubeletField("imageServiceEndpoint"), usage: "CRI image service socket, when it is not --container-runtime-endpoint.",
		value: field("", func(c *Config) *string { return &c.ImageServiceEndpoint }),
		check: func(c *Config, bad report) {
			if c.ImageServiceEndpoint != "" {
				checkEndpoint(c.ImageServiceEndpoint, bad)
			}
		}},
	{flag: "runtime-request-timeout", file: kubeletField("runtimeRequestTimeout"), usage: "Time limit of each CRI call except image pulls.",
		value: field(DefaultRuntimeRequestTimeout, func(c *Config) *time.Duration { return &c.RuntimeRequestTimeout }),
		check: func(c *Config, bad report) { checkPositiveDuration(c.RuntimeRequestTimeout, bad) }},

	{flag: "rotate-certificates", file: kubeletField("rotateCertificates"), usage: "Renew the client certificate before it expires.",
		value: field(true, func(c *Config) *bool { return &c.RotateCertificates })},
	{flag: "rotate-server-certificates", file: kubeletField("serverTLSBootstrap"), usage: "Request and renew the serving certificate from the cluster.",
		value: field(true, func(c *Config) *bool { return &c.RotateServerCertificates })},

	{flag: "system-reserved", file: kubeletField("systemReserved"), usage: "Resources withheld for the system (e.g. cpu=100m,memory=256Mi,ephemeral-storage=1Gi).",
		value: parsed(map[string]string(nil), func(c *Config, v map[string]string, bad report) { c.SystemReserved = parseResourceList(v, bad) }),
		check: func(c *Config, bad report) { checkReserved(c.SystemReserved, bad) }},
	{flag: "kube-reserved", file: kubeletField("kubeReserved"), usage: "Resources withheld for Kubernetes components (e.g. cpu=100m,memory=256Mi,ephemeral-storage=1Gi).",
		value: parsed(map[string]string(nil), func(c *Config, v map[string]string, bad report) { c.KubeReserved = parseResourceList(v, bad) }),
		check: func(c *Config, bad report) { checkReserved(c.KubeReserved, bad) }},
	{flag: "eviction-hard", file: kubeletField("evictionHard"), usage: "Hard eviction thresholds (signal<quantity or signal<percent%, comma-separated). Replaces the defaults.",
		value: parsed(evictionThresholds(DefaultEvictionHard()), landEvictionHard),
		check: checkEvictionHard},
	{flag: "image-gc-high-threshold", file: kubeletField("imageGCHighThresholdPercent"), usage: "Disk usage percent that starts image garbage collection.",
		value: field(DefaultImageGCHighThreshold, func(c *Config) *int32 { return &c.ImageGCHighThresholdPercent }),
		check: func(c *Config, bad report) { checkPercent(c.ImageGCHighThresholdPercent, bad) }},
	{flag: "image-gc-low-threshold", file: kubeletField("imageGCLowThresholdPercent"), usage: "Disk usage percent image garbage collection frees down to.",
		value: field(DefaultImageGCLowThreshold, func(c *Config) *int32 { return &c.ImageGCLowThresholdPercent }),
		check: func(c *Config, bad report) {
			checkPercent(c.ImageGCLowThresholdPercent, bad)
			if c.ImageGCLowThresholdPercent >= c.ImageGCHighThresholdPercent {
				bad(itoa(c.ImageGCLowThresholdPercent), fmt.Sprintf("must be lower than --image-gc-high-threshold (%d)", c.ImageGCHighThresholdPercent))
			}
		}},
	{flag: "container-log-max-size", file: kubeletField("containerLogMaxSize"), usage: "Size (quantity) at which a container log is rotated.",
		value: parsed(DefaultContainerLogMaxSize, func(c *Config, v string, bad report) {
			q, err := resource.ParseQuantity(v)
			if err != nil {
				bad(v, "must be a quantity such as 10Mi")
			}
			c.ContainerLogMaxSize = q
		}),
		check: func(c *Config, bad report) {
			if c.ContainerLogMaxSize.Sign() <= 0 {
				bad(c.ContainerLogMaxSize.String(), "must be a positive quantity such as 10Mi")
			}
		}},
	{flag: "container-log-max-files", file: kubeletField("containerLogMaxFiles"), usage: "Number of log files kept per container.",
		value: field(DefaultContainerLogMaxFiles, func(c *Config) *int32 { return &c.ContainerLogMaxFiles }),
		check: func(c *Config, bad report) {
			if c.ContainerLogMaxFiles < 2 {
				bad(itoa(c.ContainerLogMaxFiles), "must be at least 2")
			}
		}},

	{flag: "kube-api-qps", file: kubeletField("kubeAPIQPS"), usage: "Queries per second to the API server.",
		value: field(DefaultKubeAPIQPS, func(c *Config) *int32 { return &c.KubeAPIQPS }),
		check: func(c *Config, bad report) { checkPositive(c.KubeAPIQPS, bad) }},
	{flag: "kube-api-burst", file: kubeletField("kubeAPIBurst"), usage: "Burst of queries to the API server.",
		value: field(DefaultKubeAPIBurst, func(c *Config) *int32 { return &c.KubeAPIBurst }),
		check: func(c *Config, bad report) { checkPositive(c.KubeAPIBurst, bad) }},
	{flag: "event-qps", file: kubeletField("eventRecordQPS"), usage: "Events per second sent to the API server, through a client of their own; 0 for no limit.",
		value: field(int32(DefaultEventRecordQPS), func(c *Config) *int32 { return &c.EventRecordQPS }),
		check: func(c *Config, bad report) {
			if c.EventRecordQPS < 0 {
				bad(itoa(c.EventRecordQPS), "must be 0 (no limit) or more")
			}
		}},
	{flag: "event-burst", file: kubeletField("eventBurst"), usage: "Burst of events sent to the API server (with --event-qps > 0).",
		value: field(int32(DefaultEventBurst), func(c *Config) *int32 { return &c.EventBurst }),
		check: func(c *Config, bad report) { checkPositive(c.EventBurst, bad) }},
	{flag: "node-status-update-frequency", file: kubeletField("nodeStatusUpdateFrequency"), usage: "How often the node status is computed.",
		value: field(DefaultNodeStatusUpdateFrequency, func(c *Config) *time.Duration { return &c.NodeStatusUpdateFrequency }),
		check: func(c *Config, bad report) { checkPositiveDuration(c.NodeStatusUpdateFrequency, bad) }},
	{flag: "node-status-report-frequency", file: kubeletField("nodeStatusReportFrequency"), usage: "How often an unchanged node status is still written.",
		value: field(DefaultNodeStatusReportFrequency, func(c *Config) *time.Duration { return &c.NodeStatusReportFrequency }),
		check: func(c *Config, bad report) { checkPositiveDuration(c.NodeStatusReportFrequency, bad) }},
	{flag: "node-lease-duration-seconds", file: kubeletField("nodeLeaseDurationSeconds"), usage: "Duration of the node Lease in seconds.",
		value: field(DefaultNodeLeaseDurationSeconds, func(c *Config) *int32 { return &c.NodeLeaseDurationSeconds }),
		check: func(c *Config, bad report) { checkPositive(c.NodeLeaseDurationSeconds, bad) }},

	{flag: "drain-on-shutdown", usage: "Evict the node's pods when the agent stops.",
		value: field(false, func(c *Config) *bool { return &c.DrainOnShutdown })},
	{flag: "shutdown-grace-period", file: kubeletField("shutdownGracePeriod"), usage: "Time given to pods to stop when the agent shuts down.",
		value: field(DefaultShutdownGracePeriod, func(c *Config) *time.Duration { return &c.ShutdownGracePeriod }),
		check: func(c *Config, bad report) { checkPositiveDuration(c.ShutdownGracePeriod, bad) }},
}

// The parsing parts of the table.

func parseIP(v string, bad report) net.IP {
	ip := net.ParseIP(v)
	if ip == nil {
		bad(v, "must be an IP address")
	}
	return ip
}

// trimSpace returns the elements of list without surrounding space.
func trimSpace(list []string) []string {
	out := make([]string, len(list))
	for i, s := range list {
		out[i] = strings.TrimSpace(s)
	}
	return out
}

// trimmed returns the non-empty elements of list, without surrounding space.
func trimmed(list []string) []string {
	var out []string
	for _, s := range list {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

func landNodeIPs(c *Config, v string, bad report) {
	if v == "" {
		return
	}
	for _, s := range strings.Split(v, ",") {
		ip := net.ParseIP(strings.TrimSpace(s))
		if ip == nil {
			bad(v, fmt.Sprintf("%q is not an IP address; want a comma-separated list of at most one IPv4 and one IPv6 address", strings.TrimSpace(s)))
			c.NodeIPs = nil
			return
		}
		c.NodeIPs = append(c.NodeIPs, ip)
	}
}

func parseResourceList(m map[string]string, bad report) v1.ResourceList {
	if len(m) == 0 {
		return nil
	}
	out := make(v1.ResourceList, len(m))
	for _, k := range sortedKeys(m) {
		q, err := resource.ParseQuantity(m[k])
		if err != nil {
			bad(k+"="+m[k], fmt.Sprintf("%q is not a quantity such as 100m or 256Mi", m[k]))
			continue
		}
		out[v1.ResourceName(k)] = q
	}
	return out
}

func landEvictionHard(c *Config, m evictionThresholds, bad report) {
	for _, k := range sortedKeys(m) {
		v := m[k]
		t := EvictionThreshold{Signal: EvictionSignal(k)}
		if p, ok := strings.CutSuffix(v, "%"); ok {
			f, err := strconv.ParseFloat(p, 32)
			if err != nil {
				bad(k+"<"+v, fmt.Sprintf("%q is not a percentage", v))
				continue
			}
			t.Percentage = float32(f / 100)
		} else {
			q, err := resource.ParseQuantity(v)
			if err != nil {
				bad(k+"<"+v, fmt.Sprintf("%q is neither a quantity such as 100Mi nor a percentage such as 10%%", v))
				continue
			}
			t.Quantity = &q
		}
		c.EvictionHard = append(c.EvictionHard, t)
	}
}

// checkEndpoint accepts a CRI endpoint as the kubelet does: unix:// with an
// absolute path.
func checkEndpoint(v string, bad report) {
	if p, ok := strings.CutPrefix(v, "unix://"); !ok || !strings.HasPrefix(p, "/") {
		bad(v, "must be unix:// followed by an absolute path")
	}
}
