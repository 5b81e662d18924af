package volume

import (
	"fmt"
	"math"
	"net"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation"
)

// This file resolves the downward API, for downwardAPI (and projected)
// volumes here and for env valueFrom in pkg/env. It ports the kubelet's
// podFieldSelectorRuntimeValue, pkg/fieldpath and the resource helpers of
// pkg/api/v1/resource. Wasm pods share the node's network, so the pod IPs
// are the node IPs.

// PodFieldValue returns the value of a fieldRef of pod: metadata.name,
// metadata.namespace, metadata.uid, metadata.labels, metadata.annotations
// (whole, or one key with ['key']), spec.nodeName, spec.serviceAccountName,
// status.hostIP(s) and status.podIP(s) (the node IPs, comma separated for
// the plural forms).
func PodFieldValue(pod *v1.Pod, fs *v1.ObjectFieldSelector, nodeIPs []net.IP) (string, error) {
	if fs.APIVersion != "" && fs.APIVersion != "v1" {
		return "", fmt.Errorf("unsupported pod version: %s", fs.APIVersion)
	}
	path := fs.FieldPath
	if p, subscript, ok := splitMaybeSubscriptedPath(path); ok {
		switch p {
		case "metadata.annotations":
			if errs := validation.IsQualifiedName(strings.ToLower(subscript)); len(errs) != 0 {
				return "", fmt.Errorf("invalid key subscript in %s: %s", path, strings.Join(errs, ";"))
			}
			return pod.Annotations[subscript], nil
		case "metadata.labels":
			if errs := validation.IsQualifiedName(subscript); len(errs) != 0 {
				return "", fmt.Errorf("invalid key subscript in %s: %s", path, strings.Join(errs, ";"))
			}
			return pod.Labels[subscript], nil
		default:
			return "", fmt.Errorf("fieldPath %q does not support subscript", path)
		}
	}
	ips := make([]string, 0, len(nodeIPs))
	for _, ip := range nodeIPs {
		ips = append(ips, ip.String())
	}
	first := ""
	if len(ips) > 0 {
		first = ips[0]
	}
	switch path {
	case "metadata.annotations":
		return formatMap(pod.Annotations), nil
	case "metadata.labels":
		return formatMap(pod.Labels), nil
	case "metadata.name":
		return pod.Name, nil
	case "metadata.namespace":
		return pod.Namespace, nil
	case "metadata.uid":
		return string(pod.UID), nil
	case "spec.nodeName", "spec.host":
		return pod.Spec.NodeName, nil
	case "spec.serviceAccountName":
		return pod.Spec.ServiceAccountName, nil
	case "status.hostIP", "status.podIP":
		if first == "" {
			return "", fmt.Errorf("%s: the node has no IP address", path)
		}
		return first, nil
	case "status.hostIPs", "status.podIPs":
		if first == "" {
			return "", fmt.Errorf("%s: the node has no IP address", path)
		}
		return strings.Join(ips, ","), nil
	}
	return "", fmt.Errorf("unsupported fieldPath: %v", path)
}

// ContainerResourceValue returns the value of a resourceFieldRef:
// limits or requests of cpu, memory, ephemeral-storage (or hugepages-*),
// divided by the divisor (default 1) and rounded up. container is the one
// asking (env); fs.ContainerName, when set, names another container of pod
// (volumes always set it). A limit that is not set is the pod-level limit,
// else the node's allocatable, as the kubelet does.
func ContainerResourceValue(fs *v1.ResourceFieldSelector, pod *v1.Pod, container *v1.Container, allocatable v1.ResourceList) (string, error) {
	if fs.ContainerName != "" {
		c, err := findContainer(pod, fs.ContainerName)
		if err != nil {
			return "", err
		}
		container = c
	}
	if container == nil {
		return "", fmt.Errorf("resourceFieldRef %s: no container named", fs.Resource)
	}
	c := container.DeepCopy()
	mergeContainerResourceLimits(c, podDefaultLimits(pod, allocatable))
	return extractContainerResourceValue(fs, c)
}

// podDefaultLimits is allocatable with the pod-level limits (pod
// .spec.resources, PodLevelResources) in place of the node's.
func podDefaultLimits(pod *v1.Pod, allocatable v1.ResourceList) v1.ResourceList {
	if pod.Spec.Resources == nil || len(pod.Spec.Resources.Limits) == 0 {
		return allocatable
	}
	out := allocatable.DeepCopy()
	if out == nil {
		out = v1.ResourceList{}
	}
	for _, name := range []v1.ResourceName{v1.ResourceCPU, v1.ResourceMemory} {
		if q, ok := pod.Spec.Resources.Limits[name]; ok && !q.IsZero() {
			out[name] = q.DeepCopy()
		}
	}
	return out
}

func findContainer(pod *v1.Pod, name string) (*v1.Container, error) {
	for i := range pod.Spec.Containers {
		if pod.Spec.Containers[i].Name == name {
			return &pod.Spec.Containers[i], nil
		}
	}
	for i := range pod.Spec.InitContainers {
		if pod.Spec.InitContainers[i].Name == name {
			return &pod.Spec.InitContainers[i], nil
		}
	}
	return nil, fmt.Errorf("container %s not found", name)
}

// mergeContainerResourceLimits sets each cpu, memory and ephemeral-storage
// limit the container lacks to the given default.
func mergeContainerResourceLimits(c *v1.Container, defaults v1.ResourceList) {
	if c.Resources.Limits == nil {
		c.Resources.Limits = v1.ResourceList{}
	}
	for _, name := range []v1.ResourceName{v1.ResourceCPU, v1.ResourceMemory, v1.ResourceEphemeralStorage} {
		if q, ok := c.Resources.Limits[name]; !ok || q.IsZero() {
			if d, ok := defaults[name]; ok {
				c.Resources.Limits[name] = d.DeepCopy()
			}
		}
	}
}

func extractContainerResourceValue(fs *v1.ResourceFieldSelector, c *v1.Container) (string, error) {
	divisor := resource.MustParse("1")
	if !fs.Divisor.IsZero() {
		divisor = fs.Divisor
	}
	switch fs.Resource {
	case "limits.cpu":
		return ceilDiv(c.Resources.Limits.Cpu().MilliValue(), divisor.MilliValue()), nil
	case "limits.memory":
		return ceilDiv(c.Resources.Limits.Memory().Value(), divisor.Value()), nil
	case "limits.ephemeral-storage":
		return ceilDiv(c.Resources.Limits.StorageEphemeral().Value(), divisor.Value()), nil
	case "requests.cpu":
		return ceilDiv(c.Resources.Requests.Cpu().MilliValue(), divisor.MilliValue()), nil
	case "requests.memory":
		return ceilDiv(c.Resources.Requests.Memory().Value(), divisor.Value()), nil
	case "requests.ephemeral-storage":
		return ceilDiv(c.Resources.Requests.StorageEphemeral().Value(), divisor.Value()), nil
	}
	if name, ok := strings.CutPrefix(fs.Resource, "requests."); ok && strings.HasPrefix(name, v1.ResourceHugePagesPrefix) {
		return ceilDiv(c.Resources.Requests.Name(v1.ResourceName(name), resource.BinarySI).Value(), divisor.Value()), nil
	}
	if name, ok := strings.CutPrefix(fs.Resource, "limits."); ok && strings.HasPrefix(name, v1.ResourceHugePagesPrefix) {
		return ceilDiv(c.Resources.Limits.Name(v1.ResourceName(name), resource.BinarySI).Value(), divisor.Value()), nil
	}
	return "", fmt.Errorf("unsupported container resource : %v", fs.Resource)
}

func ceilDiv(v, d int64) string {
	if d == 0 {
		d = 1
	}
	return strconv.FormatInt(int64(math.Ceil(float64(v)/float64(d))), 10)
}

// splitMaybeSubscriptedPath splits "metadata.labels['key']" into
// ("metadata.labels", "key", true).
func splitMaybeSubscriptedPath(fieldPath string) (string, string, bool) {
	if !strings.HasSuffix(fieldPath, "']") {
		return fieldPath, "", false
	}
	s := strings.TrimSuffix(fieldPath, "']")
	parts := strings.SplitN(s, "['", 2)
	if len(parts) < 2 || len(parts[0]) == 0 {
		return fieldPath, "", false
	}
	return parts[0], parts[1], true
}

// formatMap formats a map as sorted key="value" lines.
func formatMap(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(strconv.Quote(m[k]))
	}
	return b.String()
}

// downwardAPIPayload is the kubelet's downwardapi.CollectData: one file per
// item, with the item's mode or defaultMode. (API validation allows only
// metadata fields in volumes, so no node IPs are needed.)
func downwardAPIPayload(items []v1.DownwardAPIVolumeFile, pod *v1.Pod, defaultMode int32, allocatable v1.ResourceList) (map[string]fileProjection, error) {
	data := make(map[string]fileProjection, len(items))
	for _, item := range items {
		if err := validatePath(item.Path); err != nil {
			return nil, fmt.Errorf("item %q: %w", item.Path, err)
		}
		fp := fileProjection{Mode: defaultMode}
		if item.Mode != nil {
			fp.Mode = *item.Mode
		}
		switch {
		case item.FieldRef != nil:
			v, err := PodFieldValue(pod, item.FieldRef, nil)
			if err != nil {
				return nil, fmt.Errorf("item %q: %w", item.Path, err)
			}
			fp.Data = []byte(v)
		case item.ResourceFieldRef != nil:
			v, err := ContainerResourceValue(item.ResourceFieldRef, pod, nil, allocatable)
			if err != nil {
				return nil, fmt.Errorf("item %q: %w", item.Path, err)
			}
			fp.Data = []byte(v)
		}
		data[filepath.Clean(item.Path)] = fp
	}
	return data, nil
}
