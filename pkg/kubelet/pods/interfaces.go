package pods

import (
	"context"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/krustlet/krustlet-go/pkg/provider"
	"github.com/krustlet/krustlet-go/pkg/volume"
)

// VolumeManager materialises a pod's volumes on the host. It must be safe
// for concurrent use by the workers of different pods.
type VolumeManager interface {
	// SetUp makes every volume of pod ready under podDir and returns the
	// host path of each by volume name. It is called again while the pod
	// runs and must be idempotent. An error says which volume failed; one
	// wrapping ErrVolumeSourceMissing is retried until the source appears.
	SetUp(ctx context.Context, pod *v1.Pod, podDir string) (map[string]string, error)
	// TearDown removes what SetUp made for a pod.
	TearDown(ctx context.Context, uid types.UID, podDir string) error
}

// ConfigBuilder turns a container of a pod into what a provider runs. It
// must be safe for concurrent use.
type ConfigBuilder interface {
	// Env resolves the container's environment, in order. An error is a
	// CreateContainerConfigError (e.g. a missing ConfigMap key).
	Env(ctx context.Context, pod *v1.Pod, c *v1.Container) ([]provider.EnvVar, error)
	// Args returns the full argv with $(VAR) references expanded from env.
	Args(pod *v1.Pod, c *v1.Container, env []provider.EnvVar) []string
	// Command returns the container's command and args apart, expanded
	// from env (ContainerConfig.Command and CommandArgs).
	Command(c *v1.Container, env []provider.EnvVar) (command, args []string)
	// Mounts maps the container's volumeMounts to host paths.
	Mounts(pod *v1.Pod, c *v1.Container, env []provider.EnvVar, volumes map[string]string) ([]provider.Mount, error)
}

// ErrVolumeSourceMissing marks a volume whose source (ConfigMap, Secret)
// does not exist yet.
var ErrVolumeSourceMissing = volume.ErrSourceMissing

// TokenRefresher is implemented by volume managers whose volumes hold
// tokens that must be rewritten on time: the worker sets the volumes up
// again at the time it returns.
type TokenRefresher interface {
	NextTokenRefresh(uid types.UID) (time.Time, bool)
}

// SizeLimiter is implemented by volume managers that measure emptyDir
// volumes against their sizeLimit; a pod over a limit is evicted.
type SizeLimiter interface {
	SizeLimitViolations(pod *v1.Pod, podDir string) ([]volume.SizeLimitViolation, error)
}
