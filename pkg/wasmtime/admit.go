package wasmtime

import (
	"fmt"
	"strings"

	v1 "k8s.io/api/core/v1"
)

// ReasonUnsupportedPodSpec is the status reason of a pod this provider
// rejects.
const ReasonUnsupportedPodSpec = "UnsupportedPodSpec"

// Admit rejects pods that ask for what a WebAssembly guest in this process
// cannot have: the host's PID or IPC namespace, a privileged container, or
// a volume that is not files the node can write into a directory. The host
// network is fine: guests share the node's network anyway.
func (p *Provider) Admit(pod *v1.Pod) (reason, message string) {
	var problems []string
	if pod.Spec.HostPID {
		problems = append(problems, "hostPID is set, but WebAssembly containers have no process namespace to share")
	}
	if pod.Spec.HostIPC {
		problems = append(problems, "hostIPC is set, but WebAssembly containers have no IPC namespace to share")
	}
	visit := func(kind, name string, sc *v1.SecurityContext) {
		if sc != nil && sc.Privileged != nil && *sc.Privileged {
			problems = append(problems, fmt.Sprintf("%s %q is privileged, but WebAssembly containers cannot be", kind, name))
		}
	}
	for _, c := range pod.Spec.InitContainers {
		visit("init container", c.Name, c.SecurityContext)
	}
	for _, c := range pod.Spec.Containers {
		visit("container", c.Name, c.SecurityContext)
	}
	for _, c := range pod.Spec.EphemeralContainers {
		visit("ephemeral container", c.Name, c.SecurityContext)
	}
	for _, vol := range pod.Spec.Volumes {
		if kind := volumeKind(vol.VolumeSource); kind != "" {
			problems = append(problems, fmt.Sprintf("volume %q uses %s, but this node supports only configMap, secret, emptyDir, hostPath, downwardAPI and projected volumes", vol.Name, kind))
		}
	}
	if len(problems) == 0 {
		return "", ""
	}
	return ReasonUnsupportedPodSpec, "Pod cannot run on a WebAssembly (wasmtime) node: " + strings.Join(problems, "; ")
}

// volumeKind names the type of an unsupported volume source, or returns ""
// for a supported one.
func volumeKind(s v1.VolumeSource) string {
	switch {
	case s.ConfigMap != nil, s.Secret != nil, s.EmptyDir != nil, s.HostPath != nil,
		s.DownwardAPI != nil, s.Projected != nil:
		return ""
	case s.PersistentVolumeClaim != nil:
		return "persistentVolumeClaim"
	case s.Ephemeral != nil:
		return "ephemeral"
	case s.CSI != nil:
		return "csi"
	case s.NFS != nil:
		return "nfs"
	case s.Image != nil:
		return "image"
	case s.ISCSI != nil:
		return "iscsi"
	case s.AWSElasticBlockStore != nil:
		return "awsElasticBlockStore"
	case s.GCEPersistentDisk != nil:
		return "gcePersistentDisk"
	case s.AzureDisk != nil:
		return "azureDisk"
	case s.AzureFile != nil:
		return "azureFile"
	case s.GitRepo != nil:
		return "gitRepo"
	default:
		return "a volume type unknown to this node"
	}
}
