// Package env resolves what a pod spec hands a container besides its
// volumes: the environment, the argv and the mounts. Builder implements the
// core's ConfigBuilder (Env, Args, Mounts).
//
//   - Env: value (with $(VAR) expansion); valueFrom fieldRef (metadata.name,
//     namespace, uid, labels['…'], annotations['…'], spec.nodeName,
//     spec.serviceAccountName, status.hostIP(s), status.podIP(s) — the node
//     IPs, as Wasm pods share the node's network); resourceFieldRef with
//     divisor (a limit the container lacks is the node's allocatable, as in
//     the kubelet); configMapKeyRef and secretKeyRef with optional; envFrom
//     with prefix, skipping keys that are not valid names (returned by
//     Resolve, recorded by Env as a warning event
//     InvalidEnvironmentVariableNames); service link variables: those of
//     the kubernetes service always, those of every service of the pod's
//     namespace when enableServiceLinks (default true). A missing required
//     ConfigMap, Secret or key is an error wrapping volume.ErrSourceMissing.
//   - Args: command then args, $(VAR) expanded, $$ escaping a $; without a
//     command argv[0] is the container's name, as a module has no image
//     entrypoint.
//   - Mounts: each volumeMount to a provider.Mount; subPathExpr expanded
//     from the environment; subPaths that are absolute or contain ".."
//     refused; configMap, secret, downwardAPI and projected volumes always
//     read-only; subPaths prepared by the volume Manager (SubPather).
//
// ConfigMaps and Secrets are read by name through a volume.ObjectCache
// (GET only: the Node authorizer forbids nodes to list or watch them);
// Services through an informer on all namespaces, which nodes may watch.
// Env fails until that informer has synced, as the kubelet's does, so that
// KUBERNETES_SERVICE_HOST is never silently missing.
//
// Ported from the kubelet: makeEnvironmentVariables and
// getServiceEnvVarMap (pkg/kubelet/kubelet_pods.go), pkg/kubelet/envvars,
// ExpandContainerCommandAndArgs and ExpandContainerVolumeMounts, and
// third_party/forked/golang/expansion (package expansion, with its test
// table). Changes: a stable variable order (the kubelet's is a map's), and
// valueFrom.fileKeyRef is not supported. Krustlet (Rust) had no
// resourceFieldRef, envFrom, service links or expansion, and used an empty
// string for a missing key.
//
// Use:
//
//	vm, _ := volume.NewManager(volume.Options{Client: client})
//	b, _ := env.NewBuilder(env.Options{Client: client, Objects: vm.Objects(), SubPaths: vm,
//		NodeIPs: ips, Allocatable: allocatable, Recorder: recorder})
//	go b.Run(ctx)
//	vars, err := b.Env(ctx, pod, c)
//	argv := b.Args(pod, c, vars)
//	mounts, err := b.Mounts(pod, c, vars, paths)
package env
