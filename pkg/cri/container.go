package cri

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	v1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/klog/v2"

	"github.com/krustlet/krustlet-go/pkg/provider"
)

// StartContainer creates and starts one run of a container in its pod's
// sandbox. The runtime writes the run's log at cfg.LogPath.
func (p *Provider) StartContainer(ctx context.Context, cfg provider.ContainerConfig) (provider.Container, error) {
	p.mu.Lock()
	sb := p.pods[cfg.PodUID]
	p.mu.Unlock()
	if sb == nil || cfg.Pod == nil || sb.id != cfg.Pod.ID {
		return nil, fmt.Errorf("%w: pod %s/%s has no sandbox", provider.ErrCreateContainer, cfg.Namespace, cfg.PodName)
	}
	cc, err := containerConfig(sb, cfg)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", provider.ErrCreateContainer, err)
	}
	id, err := p.runtime.CreateContainer(ctx, sb.id, cc, sb.config)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", provider.ErrCreateContainer, err)
	}
	if err := p.runtime.StartContainer(ctx, id); err != nil {
		// The kubelet leaves the created container for its GC; nothing
		// else will start it, so remove it now.
		_ = p.runtime.RemoveContainer(context.WithoutCancel(ctx), id)
		return nil, fmt.Errorf("%w: %v", provider.ErrStartContainer, err)
	}
	klog.FromContext(ctx).V(2).Info("Started container", "container", cfg.Name, "id", id, "run", cfg.ID)
	return &container{p: p, id: id}, nil
}

// containerConfig is the kubelet's generateContainerConfig for what
// krustlet supports.
func containerConfig(sb *sandbox, cfg provider.ContainerConfig) (*runtimeapi.ContainerConfig, error) {
	logPath, err := filepath.Rel(sb.config.LogDirectory, cfg.LogPath)
	if err != nil || strings.HasPrefix(logPath, "..") {
		return nil, fmt.Errorf("log path %s is not under the pod's log directory %s", cfg.LogPath, sb.config.LogDirectory)
	}
	spec := findContainer(sb.pod, cfg.Name)
	cc := &runtimeapi.ContainerConfig{
		Metadata:   &runtimeapi.ContainerMetadata{Name: cfg.Name, Attempt: attempt(cfg.ID)},
		Image:      &runtimeapi.ImageSpec{Image: imageRef(cfg.Image), UserSpecifiedImage: cfg.Image.Ref},
		Command:    cfg.Command,
		Args:       cfg.CommandArgs,
		WorkingDir: cfg.WorkingDir,
		LogPath:    logPath,
		Labels: map[string]string{
			labelContainerName: cfg.Name, labelPodName: cfg.PodName, labelPodNamespace: cfg.Namespace,
			labelPodUID: cfg.PodUID, labelRunID: cfg.ID, labelManaged: "true",
		},
		Linux: &runtimeapi.LinuxContainerConfig{Resources: linuxResources(sb.pod, cfg.Resources)},
	}
	for _, e := range cfg.Env {
		cc.Envs = append(cc.Envs, &runtimeapi.KeyValue{Key: e.Name, Value: []byte(e.Value)})
	}
	for _, m := range cfg.Mounts {
		cc.Mounts = append(cc.Mounts, &runtimeapi.Mount{ContainerPath: m.ContainerPath, HostPath: m.HostPath, Readonly: m.ReadOnly})
	}
	if spec != nil {
		cc.Stdin, cc.StdinOnce, cc.Tty = spec.Stdin, spec.StdinOnce, spec.TTY
		cc.Linux.SecurityContext = securityContext(sb.pod, spec)
	}
	return cc, nil
}

func findContainer(pod *v1.Pod, name string) *v1.Container {
	for _, list := range [][]v1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
		for i := range list {
			if list[i].Name == name {
				return &list[i]
			}
		}
	}
	return nil
}

// attempt is the run number at the end of a ContainerConfig.ID.
func attempt(id string) uint32 {
	n, _ := strconv.ParseUint(id[strings.LastIndex(id, "_")+1:], 10, 32)
	return uint32(n)
}

// securityContext merges the pod's and the container's security contexts
// (the container's win), as the kubelet's determineEffectiveSecurityContext.
func securityContext(pod *v1.Pod, c *v1.Container) *runtimeapi.LinuxContainerSecurityContext {
	out := &runtimeapi.LinuxContainerSecurityContext{NamespaceOptions: namespaceOptions(pod)}
	if psc := pod.Spec.SecurityContext; psc != nil {
		if psc.RunAsUser != nil {
			out.RunAsUser = &runtimeapi.Int64Value{Value: *psc.RunAsUser}
		}
		if psc.RunAsGroup != nil {
			out.RunAsGroup = &runtimeapi.Int64Value{Value: *psc.RunAsGroup}
		}
		out.SupplementalGroups = psc.SupplementalGroups
	}
	csc := c.SecurityContext
	if csc == nil {
		return out
	}
	if csc.RunAsUser != nil {
		out.RunAsUser = &runtimeapi.Int64Value{Value: *csc.RunAsUser}
	}
	if csc.RunAsGroup != nil {
		out.RunAsGroup = &runtimeapi.Int64Value{Value: *csc.RunAsGroup}
	}
	if csc.Privileged != nil {
		out.Privileged = *csc.Privileged
	}
	if csc.ReadOnlyRootFilesystem != nil {
		out.ReadonlyRootfs = *csc.ReadOnlyRootFilesystem
	}
	if caps := csc.Capabilities; caps != nil {
		out.Capabilities = &runtimeapi.Capability{}
		for _, c := range caps.Add {
			out.Capabilities.AddCapabilities = append(out.Capabilities.AddCapabilities, string(c))
		}
		for _, c := range caps.Drop {
			out.Capabilities.DropCapabilities = append(out.Capabilities.DropCapabilities, string(c))
		}
	}
	if csc.AllowPrivilegeEscalation != nil {
		out.NoNewPrivs = !*csc.AllowPrivilegeEscalation
	}
	return out
}

// container is one run in the runtime.
type container struct {
	p  *Provider
	id string
}

var (
	_ provider.Container   = (*container)(nil)
	_ provider.RuntimeIDer = (*container)(nil)
)

// RuntimeID is the runtime's container ID.
func (c *container) RuntimeID() string { return c.id }

// Wait asks the runtime until the container exited.
func (c *container) Wait(ctx context.Context) (provider.ExitStatus, error) {
	t := c.p.opts.Clock.NewTicker(exitPoll)
	defer t.Stop()
	for {
		st, err := c.p.runtime.ContainerStatus(ctx, c.id, false)
		if err == nil && st.GetStatus().GetState() == runtimeapi.ContainerState_CONTAINER_EXITED {
			return exitStatus(st.GetStatus()), nil
		}
		if err != nil && ctx.Err() == nil {
			klog.FromContext(ctx).V(4).Info("Reading container status failed; asking again", "id", c.id, "err", err)
		}
		select {
		case <-ctx.Done():
			return provider.ExitStatus{}, ctx.Err()
		case <-t.C():
		}
	}
}

// exitStatus is how the runtime says the container ended.
func exitStatus(s *runtimeapi.ContainerStatus) provider.ExitStatus {
	e := provider.ExitStatus{ExitCode: s.ExitCode, Reason: s.Reason, Message: s.Message}
	if s.StartedAt > 0 {
		e.StartedAt = time.Unix(0, s.StartedAt)
	}
	if s.FinishedAt > 0 {
		e.FinishedAt = time.Unix(0, s.FinishedAt)
	}
	return e
}

// Stop asks the runtime to stop the container: SIGTERM, SIGKILL after grace.
func (c *container) Stop(ctx context.Context, grace time.Duration) error {
	return c.p.runtime.StopContainer(ctx, c.id, int64(grace.Seconds()))
}

// ListContainers lists the runs this node's agents started that still run.
func (p *Provider) ListContainers(ctx context.Context) ([]provider.RunningContainer, error) {
	list, err := p.runtime.ListContainers(ctx, &runtimeapi.ContainerFilter{
		State:         &runtimeapi.ContainerStateValue{State: runtimeapi.ContainerState_CONTAINER_RUNNING},
		LabelSelector: map[string]string{labelManaged: "true"},
	})
	if err != nil {
		return nil, err
	}
	out := make([]provider.RunningContainer, 0, len(list))
	for _, c := range list {
		if id := c.Labels[labelRunID]; id != "" {
			out = append(out, provider.RunningContainer{ID: id, StartedAt: time.Unix(0, c.CreatedAt), ImageID: c.ImageRef})
		}
	}
	return out, nil
}

// Adopt returns a handle on the running container of a run.
func (p *Provider) Adopt(ctx context.Context, runID string) (provider.Container, error) {
	id, err := p.containerOf(ctx, runID)
	if err != nil {
		return nil, err
	}
	return &container{p: p, id: id}, nil
}

// containerOf finds the runtime's container of a run.
func (p *Provider) containerOf(ctx context.Context, runID string) (string, error) {
	list, err := p.runtime.ListContainers(ctx, &runtimeapi.ContainerFilter{LabelSelector: map[string]string{labelRunID: runID}})
	if err != nil {
		return "", err
	}
	for _, c := range list {
		if c.State == runtimeapi.ContainerState_CONTAINER_RUNNING {
			return c.Id, nil
		}
	}
	if len(list) > 0 {
		return list[0].Id, nil
	}
	return "", fmt.Errorf("no container of run %s", runID)
}

// ContainerStats reads a run's CPU and memory.
func (p *Provider) ContainerStats(ctx context.Context, runID string) (provider.ContainerStats, error) {
	id, err := p.containerOf(ctx, runID)
	if err != nil {
		return provider.ContainerStats{}, err
	}
	s, err := p.runtime.ContainerStats(ctx, id)
	if err != nil {
		return provider.ContainerStats{}, err
	}
	out := provider.ContainerStats{Timestamp: p.opts.Clock.Now()}
	if cpu := s.GetCpu(); cpu != nil {
		out.Timestamp = time.Unix(0, cpu.Timestamp)
		out.CPUNanos = cpu.GetUsageCoreNanoSeconds().GetValue()
	}
	out.MemoryBytes = s.GetMemory().GetWorkingSetBytes().GetValue()
	return out, nil
}
