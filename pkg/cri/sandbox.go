package cri

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path"
	"slices"

	v1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/klog/v2"

	"github.com/krustlet/krustlet-go/pkg/provider"
)

// sandbox is a pod's sandbox as this agent knows it.
type sandbox struct {
	id     string
	pod    *v1.Pod
	config *runtimeapi.PodSandboxConfig
}

// StartPod runs the pod's sandbox, or returns the ready one a previous
// agent started.
func (p *Provider) StartPod(ctx context.Context, cfg provider.PodConfig) (*provider.PodSandbox, error) {
	pod := cfg.Pod
	sc := sandboxConfig(pod, cfg.LogDirectory)
	id, err := p.readySandbox(ctx, string(pod.UID))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", provider.ErrCreatePodSandbox, err)
	}
	if id == "" {
		if id, err = p.runtime.RunPodSandbox(ctx, sc, p.handler(cfg.Handler)); err != nil {
			return nil, fmt.Errorf("%w: %v", provider.ErrCreatePodSandbox, err)
		}
		klog.FromContext(ctx).V(2).Info("Pod sandbox started", "sandbox", id, "handler", p.handler(cfg.Handler))
	}
	st, err := p.runtime.PodSandboxStatus(ctx, id, false)
	if err != nil {
		return nil, fmt.Errorf("%w: reading the sandbox's status: %v", provider.ErrCreatePodSandbox, err)
	}
	p.mu.Lock()
	p.pods[string(pod.UID)] = &sandbox{id: id, pod: pod, config: sc}
	p.mu.Unlock()
	return &provider.PodSandbox{ID: id, IPs: sandboxIPs(st.GetStatus(), pod)}, nil
}

// handler is the runtime handler of a RuntimeClass handler: the provider's
// own name means the runtime's default.
func (p *Provider) handler(h string) string {
	if h == p.opts.Name {
		return ""
	}
	return h
}

// readySandbox finds the ready sandbox of a pod, "" when there is none.
func (p *Provider) readySandbox(ctx context.Context, uid string) (string, error) {
	list, err := p.runtime.ListPodSandbox(ctx, &runtimeapi.PodSandboxFilter{
		LabelSelector: map[string]string{labelPodUID: uid},
		State:         &runtimeapi.PodSandboxStateValue{State: runtimeapi.PodSandboxState_SANDBOX_READY},
	})
	if err != nil {
		return "", err
	}
	if len(list) == 0 {
		return "", nil
	}
	return list[0].Id, nil
}

// sandboxes lists every sandbox of a pod, ready or not.
func (p *Provider) sandboxes(ctx context.Context, uid string) ([]string, error) {
	list, err := p.runtime.ListPodSandbox(ctx, &runtimeapi.PodSandboxFilter{LabelSelector: map[string]string{labelPodUID: uid}})
	if err != nil {
		return nil, err
	}
	ids := make([]string, 0, len(list))
	for _, s := range list {
		ids = append(ids, s.Id)
	}
	return ids, nil
}

// ListPods lists the pods that have a sandbox this agent made.
func (p *Provider) ListPods(ctx context.Context) ([]string, error) {
	list, err := p.runtime.ListPodSandbox(ctx, &runtimeapi.PodSandboxFilter{LabelSelector: map[string]string{labelManaged: "true"}})
	if err != nil {
		return nil, err
	}
	var uids []string
	for _, s := range list {
		if uid := s.Labels[labelPodUID]; uid != "" && !slices.Contains(uids, uid) {
			uids = append(uids, uid)
		}
	}
	return uids, nil
}

// StopPod stops every sandbox of the pod.
func (p *Provider) StopPod(ctx context.Context, uid string) error {
	ids, err := p.sandboxes(ctx, uid)
	if err != nil {
		return err
	}
	var errs []error
	for _, id := range ids {
		errs = append(errs, p.runtime.StopPodSandbox(ctx, id))
	}
	return errors.Join(errs...)
}

// RemovePod removes every sandbox of the pod, with its containers.
func (p *Provider) RemovePod(ctx context.Context, uid string) error {
	ids, err := p.sandboxes(ctx, uid)
	if err != nil {
		return err
	}
	var errs []error
	for _, id := range ids {
		errs = append(errs, p.runtime.StopPodSandbox(ctx, id), p.runtime.RemovePodSandbox(ctx, id))
	}
	p.mu.Lock()
	delete(p.pods, uid)
	p.mu.Unlock()
	return errors.Join(errs...)
}

// sandboxConfig is the kubelet's generatePodSandboxConfig, for what
// krustlet supports.
func sandboxConfig(pod *v1.Pod, logDir string) *runtimeapi.PodSandboxConfig {
	sc := &runtimeapi.PodSandboxConfig{
		Metadata:     &runtimeapi.PodSandboxMetadata{Name: pod.Name, Namespace: pod.Namespace, Uid: string(pod.UID)},
		LogDirectory: logDir,
		Labels: map[string]string{
			labelPodName: pod.Name, labelPodNamespace: pod.Namespace, labelPodUID: string(pod.UID), labelManaged: "true",
		},
		Annotations: pod.Annotations,
		Linux: &runtimeapi.LinuxPodSandboxConfig{
			CgroupParent: cgroupParent(pod),
			SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{
				NamespaceOptions: namespaceOptions(pod),
			},
		},
	}
	if !pod.Spec.HostNetwork {
		// A host-network sandbox has the node's host name: runc refuses to
		// set one without a UTS namespace of its own.
		sc.Hostname = pod.Name
		if pod.Spec.Hostname != "" {
			sc.Hostname = pod.Spec.Hostname
		}
	}
	if pod.Spec.DNSPolicy == v1.DNSNone && pod.Spec.DNSConfig != nil {
		d := pod.Spec.DNSConfig
		dc := &runtimeapi.DNSConfig{Servers: d.Nameservers, Searches: d.Searches}
		for _, o := range d.Options {
			opt := o.Name
			if o.Value != nil {
				opt += ":" + *o.Value
			}
			dc.Options = append(dc.Options, opt)
		}
		sc.DnsConfig = dc
	}
	if psc := pod.Spec.SecurityContext; psc != nil {
		lsc := sc.Linux.SecurityContext
		if psc.RunAsUser != nil {
			lsc.RunAsUser = &runtimeapi.Int64Value{Value: *psc.RunAsUser}
		}
		if psc.RunAsGroup != nil {
			lsc.RunAsGroup = &runtimeapi.Int64Value{Value: *psc.RunAsGroup}
		}
		lsc.SupplementalGroups = psc.SupplementalGroups
		for _, s := range psc.Sysctls {
			if sc.Linux.Sysctls == nil {
				sc.Linux.Sysctls = map[string]string{}
			}
			sc.Linux.Sysctls[s.Name] = s.Value
		}
	}
	for _, c := range pod.Spec.Containers {
		for _, port := range c.Ports {
			sc.PortMappings = append(sc.PortMappings, &runtimeapi.PortMapping{
				Protocol: protocol(port.Protocol), ContainerPort: port.ContainerPort, HostPort: port.HostPort, HostIp: port.HostIP,
			})
		}
	}
	return sc
}

func protocol(p v1.Protocol) runtimeapi.Protocol {
	switch p {
	case v1.ProtocolUDP:
		return runtimeapi.Protocol_UDP
	case v1.ProtocolSCTP:
		return runtimeapi.Protocol_SCTP
	}
	return runtimeapi.Protocol_TCP
}

func namespaceOptions(pod *v1.Pod) *runtimeapi.NamespaceOption {
	o := &runtimeapi.NamespaceOption{Network: runtimeapi.NamespaceMode_POD, Pid: runtimeapi.NamespaceMode_CONTAINER, Ipc: runtimeapi.NamespaceMode_POD}
	if pod.Spec.HostNetwork {
		o.Network = runtimeapi.NamespaceMode_NODE
	}
	if pod.Spec.HostPID {
		o.Pid = runtimeapi.NamespaceMode_NODE
	} else if pod.Spec.ShareProcessNamespace != nil && *pod.Spec.ShareProcessNamespace {
		o.Pid = runtimeapi.NamespaceMode_POD
	}
	if pod.Spec.HostIPC {
		o.Ipc = runtimeapi.NamespaceMode_NODE
	}
	return o
}

// cgroupParent is the kubelet's cgroupfs layout: /kubepods/pod<uid> for
// Guaranteed pods, /kubepods/<qos>/pod<uid> for the others.
func cgroupParent(pod *v1.Pod) string {
	name := "pod" + string(pod.UID)
	switch qosClass(pod) {
	case v1.PodQOSGuaranteed:
		return path.Join("/kubepods", name)
	case v1.PodQOSBurstable:
		return path.Join("/kubepods", "burstable", name)
	}
	return path.Join("/kubepods", "besteffort", name)
}

// sandboxIPs are the sandbox's addresses; a host-network pod has none of
// its own (the core then reports the node's).
func sandboxIPs(st *runtimeapi.PodSandboxStatus, pod *v1.Pod) []net.IP {
	if pod.Spec.HostNetwork || st.GetNetwork() == nil {
		return nil
	}
	var ips []net.IP
	if ip := net.ParseIP(st.Network.Ip); ip != nil {
		ips = append(ips, ip)
	}
	for _, a := range st.Network.AdditionalIps {
		if ip := net.ParseIP(a.Ip); ip != nil {
			ips = append(ips, ip)
		}
	}
	return ips
}
