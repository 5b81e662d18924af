package kubelet

// The parts below are an interim, minimal volume manager (emptyDir only)
// and container config builder (literal env values, command + args); they
// are replaced by pkg/volume and pkg/env.

import (
	"context"
	"net"
	"os"
	"path/filepath"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/record"

	"github.com/krustlet/krustlet-go/pkg/config"
	"github.com/krustlet/krustlet-go/pkg/kubelet/pods"
	"github.com/krustlet/krustlet-go/pkg/provider"
)

type tmpVolumes struct{}

func (tmpVolumes) SetUp(ctx context.Context, pod *v1.Pod, podDir string) (map[string]string, error) {
	out := map[string]string{}
	for _, v := range pod.Spec.Volumes {
		if v.EmptyDir != nil {
			p := filepath.Join(podDir, "volumes", v.Name)
			os.MkdirAll(p, 0o755)
			out[v.Name] = p
		}
	}
	return out, nil
}
func (tmpVolumes) TearDown(context.Context, types.UID, string) error { return nil }

type tmpBuilder struct{}

func (tmpBuilder) Env(ctx context.Context, pod *v1.Pod, c *v1.Container) ([]provider.EnvVar, error) {
	var out []provider.EnvVar
	for _, e := range c.Env {
		out = append(out, provider.EnvVar{Name: e.Name, Value: e.Value})
	}
	return out, nil
}
func (tmpBuilder) Args(pod *v1.Pod, c *v1.Container, env []provider.EnvVar) []string {
	argv := append([]string{}, c.Command...)
	if len(argv) == 0 {
		argv = []string{c.Name}
	}
	return append(argv, c.Args...)
}
func (tmpBuilder) Mounts(pod *v1.Pod, c *v1.Container, env []provider.EnvVar, vols map[string]string) ([]provider.Mount, error) {
	var out []provider.Mount
	for _, m := range c.VolumeMounts {
		out = append(out, provider.Mount{HostPath: vols[m.Name], ContainerPath: m.MountPath, ReadOnly: m.ReadOnly})
	}
	return out, nil
}

func podConfigParts(cfg *config.Config, client kubernetes.Interface, ips []net.IP, rec record.EventRecorder, alloc func() v1.ResourceList) (pods.VolumeManager, pods.ConfigBuilder, pods.CredentialSource, error) {
	return tmpVolumes{}, tmpBuilder{}, nil, nil
}
