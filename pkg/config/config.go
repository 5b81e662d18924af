package config

import (
	"maps"
	"net"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// Defaults of the node agent. They are the kubelet's defaults wherever the
// kubelet has the same setting.
const (
	DefaultDataDir                   = "/var/lib/krustlet"
	DefaultAddress                   = "0.0.0.0"
	DefaultPort                      = 10250
	DefaultHealthzPort               = 10248
	DefaultHealthzBindAddress        = "127.0.0.1"
	DefaultMaxPods                   = 110
	DefaultProvider                  = "wasmtime"
	DefaultImageGCHighThreshold      = 85
	DefaultImageGCLowThreshold       = 80
	DefaultContainerLogMaxSize       = "10Mi"
	DefaultContainerLogMaxFiles      = 5
	DefaultKubeAPIQPS                = 50
	DefaultKubeAPIBurst              = 100
	DefaultEventRecordQPS            = 50
	DefaultEventBurst                = 100
	DefaultNodeStatusUpdateFrequency = 10 * time.Second
	DefaultNodeStatusReportFrequency = 5 * time.Minute
	DefaultNodeLeaseDurationSeconds  = 40
	DefaultShutdownGracePeriod       = 30 * time.Second
	DefaultContainerRuntimeEndpoint  = "unix:///run/containerd/containerd.sock"
	DefaultRuntimeRequestTimeout     = 2 * time.Minute
)

// DefaultEvictionHard returns the kubelet's default hard eviction thresholds
// in --eviction-hard syntax (signal -> value). Each call returns a new map.
func DefaultEvictionHard() map[string]string {
	return map[string]string{
		string(SignalMemoryAvailable):  "100Mi",
		string(SignalNodeFsAvailable):  "10%",
		string(SignalNodeFsInodesFree): "5%",
		string(SignalImageFsAvailable): "15%",
	}
}

// AuthorizationMode is how the node server authorizes requests.
type AuthorizationMode string

// The authorization modes, as in the kubelet.
const (
	// AuthorizationModeWebhook asks the API server with a SubjectAccessReview.
	AuthorizationModeWebhook AuthorizationMode = "Webhook"
	// AuthorizationModeAlwaysAllow allows every authenticated request.
	AuthorizationModeAlwaysAllow AuthorizationMode = "AlwaysAllow"
)

// EvictionSignal names a resource whose shortage triggers eviction.
type EvictionSignal string

// The eviction signals the kubelet understands.
const (
	SignalMemoryAvailable   EvictionSignal = "memory.available"
	SignalNodeFsAvailable   EvictionSignal = "nodefs.available"
	SignalNodeFsInodesFree  EvictionSignal = "nodefs.inodesFree"
	SignalImageFsAvailable  EvictionSignal = "imagefs.available"
	SignalImageFsInodesFree EvictionSignal = "imagefs.inodesFree"
	SignalPIDAvailable      EvictionSignal = "pid.available"
)

// EvictionThreshold is one hard eviction threshold: evict when Signal drops
// below the threshold. Only "less than" exists, as in the kubelet. Exactly
// one of Quantity and Percentage is meaningful.
type EvictionThreshold struct {
	Signal EvictionSignal
	// Quantity is an absolute threshold; nil when Percentage is used.
	Quantity *resource.Quantity
	// Percentage is a fraction of capacity in [0, 1], used when Quantity is nil.
	Percentage float32
}

// Config is the validated configuration of the node agent. Build it with
// Load; a Config built by hand should be checked with Validate.
type Config struct {
	// ConfigFile is the KubeletConfiguration file the values were read
	// from (--config); empty when none. Default: none.
	ConfigFile string

	// Kubeconfig is the kubeconfig used to talk to the API server
	// (--kubeconfig). Default: <DataDir>/kubeconfig.
	Kubeconfig string
	// BootstrapKubeconfig is the kubeconfig used to request a client
	// certificate when Kubeconfig does not exist yet
	// (--bootstrap-kubeconfig). Default: none.
	BootstrapKubeconfig string

	// NodeName is the name of the Node object (--node-name). Default:
	// Hostname.
	NodeName string
	// Hostname is the host name reported in the kubernetes.io/hostname
	// label (--hostname-override). Default: the lowercased host name.
	Hostname string
	// NodeIPs are the addresses reported for the node, at most one per IP
	// family (--node-ip). Default: none, detected later.
	NodeIPs []net.IP

	// Address is the IP the node server listens on (--address). Default:
	// 0.0.0.0.
	Address net.IP
	// Port is the port of the node server (--port). Default: 10250.
	Port int32
	// HealthzPort is the port of the healthz endpoint; 0 disables it
	// (--healthz-port). Default: 10248.
	HealthzPort int32
	// HealthzBindAddress is the IP the healthz endpoint listens on
	// (--healthz-bind-address). Default: 127.0.0.1.
	HealthzBindAddress net.IP

	// DataDir holds the node agent's state (--data-dir). Default:
	// /var/lib/krustlet.
	DataDir string
	// CertDir holds the node's certificates (--cert-dir). Default:
	// <DataDir>/pki.
	CertDir string
	// TLSCertFile and TLSPrivateKeyFile are the serving certificate and
	// key (--tls-cert-file, --tls-private-key-file). Default: none, the
	// certificate is requested from the cluster or self-signed.
	TLSCertFile       string
	TLSPrivateKeyFile string
	// ClientCAFile authenticates clients by certificate (--client-ca-file).
	// Default: none.
	ClientCAFile string
	// AnonymousAuth allows unauthenticated requests to the node server
	// (--anonymous-auth). Default: false.
	AnonymousAuth bool
	// AuthenticationTokenWebhook authenticates bearer tokens with a
	// TokenReview (--authentication-token-webhook). Default: true.
	AuthenticationTokenWebhook bool
	// AuthorizationMode authorizes requests to the node server
	// (--authorization-mode). Default: Webhook.
	AuthorizationMode AuthorizationMode
	// EnableDebuggingHandlers serves logs and exec
	// (--enable-debugging-handlers). Default: true.
	EnableDebuggingHandlers bool

	// MaxPods is the number of pods the node accepts (--max-pods).
	// Default: 110.
	MaxPods int32
	// NodeLabels are added to the Node when it registers (--node-labels).
	// Default: none.
	NodeLabels map[string]string
	// RegisterWithTaints are added to the Node when it registers
	// (--register-with-taints). Default: none.
	RegisterWithTaints []v1.Taint
	// RegisterNode creates the Node object (--register-node). Default: true.
	RegisterNode bool

	// Providers names the runtime providers enabled on the node
	// (--provider). The first is the default provider, which runs the pods
	// that have no RuntimeClass. Default: wasmtime.
	Providers []string
	// RuntimeHandlers maps RuntimeClass handler names to the provider of
	// Providers that runs their pods (--runtime-handlers). Handlers adds a
	// handler per provider. Default: none.
	RuntimeHandlers map[string]string
	// InsecureRegistries are registries (host[:port]) reached over plain
	// HTTP (--insecure-registries). Default: none.
	InsecureRegistries []string
	// RegistryConfig is a Docker config.json with registry credentials
	// (--registry-config). Default: none.
	RegistryConfig string
	// RegistryCAFile is a PEM bundle trusted for registries
	// (--registry-ca-file). Default: none, the system roots.
	RegistryCAFile string
	// AllowLocalModules lets pods use modules from the local file system
	// (--x-allow-local-modules). Experimental. Default: false.
	AllowLocalModules bool
	// ContainerRuntimeEndpoint is the CRI socket of the cri provider
	// (--container-runtime-endpoint). Default:
	// unix:///run/containerd/containerd.sock.
	ContainerRuntimeEndpoint string
	// ImageServiceEndpoint is the CRI image service socket
	// (--image-service-endpoint). Default: ContainerRuntimeEndpoint.
	ImageServiceEndpoint string
	// RuntimeRequestTimeout bounds every CRI call but image pulls
	// (--runtime-request-timeout). Default: 2m.
	RuntimeRequestTimeout time.Duration

	// RotateCertificates renews the client certificate before it expires
	// (--rotate-certificates). Default: true.
	RotateCertificates bool
	// RotateServerCertificates requests and renews the serving certificate
	// from the cluster (--rotate-server-certificates). Default: true.
	RotateServerCertificates bool

	// SystemReserved and KubeReserved are withheld from pods
	// (--system-reserved, --kube-reserved). Default: none.
	SystemReserved v1.ResourceList
	KubeReserved   v1.ResourceList
	// EvictionHard are the hard eviction thresholds, sorted by signal
	// (--eviction-hard). Default: memory.available<100Mi,
	// nodefs.available<10%, nodefs.inodesFree<5%, imagefs.available<15%.
	EvictionHard []EvictionThreshold
	// ImageGCHighThresholdPercent starts image garbage collection and
	// ImageGCLowThresholdPercent is its target (--image-gc-high-threshold,
	// --image-gc-low-threshold). Default: 85 and 80.
	ImageGCHighThresholdPercent int32
	ImageGCLowThresholdPercent  int32
	// ContainerLogMaxSize rotates a container log when it reaches this size
	// (--container-log-max-size). Default: 10Mi.
	ContainerLogMaxSize resource.Quantity
	// ContainerLogMaxFiles is the number of log files kept per container
	// (--container-log-max-files). Default: 5.
	ContainerLogMaxFiles int32

	// KubeAPIQPS and KubeAPIBurst limit requests to the API server
	// (--kube-api-qps, --kube-api-burst). Default: 50 and 100.
	KubeAPIQPS   int32
	KubeAPIBurst int32
	// EventRecordQPS and EventBurst limit the events sent to the API
	// server, through a client of their own so that events never delay
	// status updates (--event-qps, 0 for no limit; --event-burst).
	// Default: 50 and 100.
	EventRecordQPS int32
	EventBurst     int32
	// NodeStatusUpdateFrequency is how often the node status is computed
	// (--node-status-update-frequency). Default: 10s.
	NodeStatusUpdateFrequency time.Duration
	// NodeStatusReportFrequency is how often an unchanged status is still
	// written (--node-status-report-frequency). Default: 5m.
	NodeStatusReportFrequency time.Duration
	// NodeLeaseDurationSeconds is the duration of the node Lease
	// (--node-lease-duration-seconds). Default: 40.
	NodeLeaseDurationSeconds int32

	// DrainOnShutdown evicts the node's pods when the agent stops
	// (--drain-on-shutdown). Default: false.
	DrainOnShutdown bool
	// ShutdownGracePeriod bounds the time given to pods on shutdown
	// (--shutdown-grace-period). Default: 30s.
	ShutdownGracePeriod time.Duration

	// sources records, per flag name, where a value that did not come from
	// the canonical command-line flag came from, for error messages.
	sources map[string]string
}

// DefaultProvider returns the provider that runs the pods that have no
// RuntimeClass: the first of Providers, or "" when there is none.
func (c *Config) DefaultProvider() string {
	if len(c.Providers) == 0 {
		return ""
	}
	return c.Providers[0]
}

// Handlers returns the RuntimeClass handlers the node serves, each mapped
// to the provider that runs its pods: every provider of Providers serves
// the handler named after itself, and RuntimeHandlers adds handlers, its
// entries winning over those. The map is new on every call.
func (c *Config) Handlers() map[string]string {
	h := make(map[string]string, len(c.Providers)+len(c.RuntimeHandlers))
	for _, p := range c.Providers {
		h[p] = p
	}
	maps.Copy(h, c.RuntimeHandlers)
	return h
}
