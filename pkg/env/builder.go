package env

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	coreinformers "k8s.io/client-go/informers/core/v1"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"

	"github.com/krustlet/krustlet-go/pkg/env/expansion"
	"github.com/krustlet/krustlet-go/pkg/provider"
	"github.com/krustlet/krustlet-go/pkg/volume"
)

// SubPather prepares the host path of a volumeMount with a subPath.
// *volume.Manager implements it. It must be safe for concurrent use.
type SubPather interface {
	SubPath(pod *v1.Pod, containerName string, mountIndex int, volumeName, subPath string) (string, error)
}

var _ SubPather = (*volume.Manager)(nil)

// Options configure a Builder.
type Options struct {
	// Client lists and watches Services (all namespaces, which the Node
	// authorizer allows) and, when Objects is nil, reads ConfigMaps and
	// Secrets. Required.
	Client kubernetes.Interface
	// Objects is the cache to read ConfigMaps and Secrets through; pass
	// the volume Manager's (Manager.Objects()) so both share reads. Nil: a
	// new one on Client with the default TTL.
	Objects *volume.ObjectCache
	// SubPaths prepares subPath mounts; pass the volume Manager. Required.
	SubPaths SubPather
	// NodeIPs are status.hostIP(s) and, as Wasm pods share the node's
	// network, status.podIP(s); the first is the primary.
	NodeIPs []net.IP
	// Allocatable returns the node's allocatable resources, the value of
	// a resourceFieldRef limit the container does not set. Nil: none.
	Allocatable func() v1.ResourceList
	// Recorder, if set, gets the InvalidEnvironmentVariableNames warning
	// when envFrom keys are skipped.
	Recorder record.EventRecorder
	// StrictEnvVarNames skips envFrom keys that are not C-identifier-like
	// names ([-._a-zA-Z][-._a-zA-Z0-9]*), the rule before Kubernetes 1.34.
	// By default, as Kubernetes since the GA of
	// RelaxedEnvironmentVariableValidation, any printable ASCII name
	// without '=' is valid.
	StrictEnvVarNames bool
}

// Builder turns a container of a pod into what a provider runs: its
// environment, argv and mounts. It implements the core's ConfigBuilder and
// is safe for concurrent use. Run must be running for Env to work.
type Builder struct {
	opts     Options
	objects  *volume.ObjectCache
	services cache.SharedIndexInformer
	lister   corelisters.ServiceLister
}

// NewBuilder returns a Builder, or an error if opts are invalid.
func NewBuilder(opts Options) (*Builder, error) {
	if opts.Client == nil {
		return nil, errors.New("env: Options.Client is required")
	}
	if opts.SubPaths == nil {
		return nil, errors.New("env: Options.SubPaths is required")
	}
	objects := opts.Objects
	if objects == nil {
		objects = volume.NewObjectCache(opts.Client, nil, 0)
	}
	inf := coreinformers.NewServiceInformer(opts.Client, metav1.NamespaceAll, 0,
		cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
	return &Builder{
		opts:     opts,
		objects:  objects,
		services: inf,
		lister:   corelisters.NewServiceLister(inf.GetIndexer()),
	}, nil
}

// Run watches Services for the service link variables until ctx ends.
// Call it once.
func (b *Builder) Run(ctx context.Context) error {
	b.services.RunWithContext(ctx)
	return nil
}

// HasSynced reports whether Services have been read once; Env fails
// until then.
func (b *Builder) HasSynced() bool { return b.services.HasSynced() }

// Args returns the container's argv: command then args, each with
// $(VAR) references expanded from env ($$ escapes a $). Without a command,
// argv[0] is the container's name (a module has no image entrypoint).
func (b *Builder) Args(_ *v1.Pod, c *v1.Container, env []provider.EnvVar) []string {
	command, args := b.Command(c, env)
	if len(command) == 0 {
		command = []string{c.Name}
	}
	return append(command, args...)
}

// Command returns the container's command and args, each with $(VAR)
// references expanded from env, kept apart for runtimes whose images have
// an entrypoint.
func (b *Builder) Command(c *v1.Container, env []provider.EnvVar) (command, args []string) {
	mapping := expansion.MappingFuncFor(envMap(env))
	for _, s := range c.Command {
		command = append(command, expansion.Expand(s, mapping))
	}
	for _, s := range c.Args {
		args = append(args, expansion.Expand(s, mapping))
	}
	return command, args
}

// Mounts maps the container's volumeMounts to host paths, in order.
// volumes are the paths that the volume manager's SetUp returned. A
// subPathExpr is expanded from env first; a subPath that is absolute or
// contains ".." is refused. configMap, secret, downwardAPI and projected
// volumes are always read-only.
func (b *Builder) Mounts(pod *v1.Pod, c *v1.Container, env []provider.EnvVar, volumes map[string]string) ([]provider.Mount, error) {
	mounts := make([]provider.Mount, 0, len(c.VolumeMounts))
	for i, vm := range c.VolumeMounts {
		hostPath, ok := volumes[vm.Name]
		vol := podVolume(pod, vm.Name)
		if !ok || vol == nil {
			return nil, fmt.Errorf("cannot find volume %q to mount into container %q", vm.Name, c.Name)
		}
		subPath := vm.SubPath
		if vm.SubPathExpr != "" {
			var err error
			if subPath, err = expandSubPathExpr(vm.SubPathExpr, env); err != nil {
				return nil, fmt.Errorf("volumeMount %q of container %q: subPathExpr: %w", vm.Name, c.Name, err)
			}
		}
		if subPath != "" {
			if err := volume.ValidateSubPath(subPath); err != nil {
				return nil, fmt.Errorf("volumeMount %q of container %q: %w", vm.Name, c.Name, err)
			}
			var err error
			if hostPath, err = b.opts.SubPaths.SubPath(pod, c.Name, i, vm.Name, subPath); err != nil {
				return nil, fmt.Errorf("volumeMount %q of container %q: %w", vm.Name, c.Name, err)
			}
		}
		containerPath := vm.MountPath
		if !path.IsAbs(containerPath) {
			containerPath = "/" + containerPath
		}
		mounts = append(mounts, provider.Mount{
			HostPath:      hostPath,
			ContainerPath: path.Clean(containerPath),
			ReadOnly:      vm.ReadOnly || volume.ForcedReadOnly(vol),
		})
	}
	return mounts, nil
}

func podVolume(pod *v1.Pod, name string) *v1.Volume {
	for i := range pod.Spec.Volumes {
		if pod.Spec.Volumes[i].Name == name {
			return &pod.Spec.Volumes[i]
		}
	}
	return nil
}

// expandSubPathExpr is the kubelet's ExpandContainerVolumeMounts: every
// reference must be to a variable with a non-empty value.
func expandSubPathExpr(expr string, env []provider.EnvVar) (string, error) {
	m := envMap(env)
	var missing []string
	out := expansion.Expand(expr, func(key string) string {
		v, ok := m[key]
		if !ok || v == "" {
			missing = append(missing, key)
		}
		return v
	})
	if len(missing) > 0 {
		return "", fmt.Errorf("missing value for %s", joinSorted(missing))
	}
	return out, nil
}

func envMap(env []provider.EnvVar) map[string]string {
	m := make(map[string]string, len(env))
	for _, e := range env {
		m[e.Name] = e.Value
	}
	return m
}
