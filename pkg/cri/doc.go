// Package cri is the provider of ordinary Linux containers: it drives a
// container runtime (containerd first) through the CRI v1 API, as the
// kubelet's kuberuntime does, so that one krustlet runs container pods
// beside Wasm pods, each picked by its RuntimeClass.
//
// The core keeps the pod lifecycle (restart policy, back-off, status,
// events); this package maps each step onto CRI calls:
//
//	StartPod        RunPodSandbox (labels, hostname, log directory, port
//	                mappings, host namespaces, cgroup parent
//	                /kubepods/<qos>/pod<uid>), PodSandboxStatus for the IPs
//	StartContainer  CreateContainer + StartContainer; the runtime writes the
//	                CRI-format log at the path the core chose (RuntimeLogs)
//	Wait / Stop     ContainerStatus until exited; StopContainer with the
//	                grace period (SIGTERM, then SIGKILL)
//	StopPod         StopPodSandbox; RemovePod: RemovePodSandbox; ListPods
//	                for the core to remove the sandboxes of deleted pods
//	PullImage       ImageStatus / PullImage with the pod's credentials
//	ListImages      ListImages, for the Node's status.images
//	Healthy         Status: RuntimeReady and NetworkReady
//	Adopter         ListContainers by the krustlet.dev/run-id label
//	Streamer        Exec / Attach / PortForward: the runtime's streaming URL
//	StatsProvider   ContainerStats
//
// Use:
//
//	p, err := cri.New(ctx, cri.Options{Name: "cri", Endpoint: "unix:///run/containerd/containerd.sock"})
//
// Differences from the kubelet: the handler named after the provider (the
// default "cri") means the runtime's default handler; probes, lifecycle
// hooks, image garbage collection and runAsNonRoot checks are not done yet.
package cri
