package env

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/krustlet/krustlet-go/pkg/env/expansion"
	"github.com/krustlet/krustlet-go/pkg/provider"
	"github.com/krustlet/krustlet-go/pkg/volume"
)

// ReasonInvalidEnvironmentVariableNames is the reason of the warning event
// for skipped envFrom keys.
const ReasonInvalidEnvironmentVariableNames = "InvalidEnvironmentVariableNames"

// SkippedKeys are the keys of one envFrom source that were skipped because
// they (with the prefix) are not valid variable names.
type SkippedKeys struct {
	// Kind is "configMap" or "secret"; Namespace and Name the object.
	Kind, Namespace, Name string
	// Keys are the skipped names, prefix included, sorted.
	Keys []string
}

// Message is the kubelet's event message for the skipped keys.
func (s SkippedKeys) Message() string {
	return fmt.Sprintf("Keys [%s] from the EnvFrom %s %s/%s were skipped since they are considered invalid environment variable names.",
		strings.Join(s.Keys, ", "), s.Kind, s.Namespace, s.Name)
}

// Env resolves the container's environment (see Resolve) and records a
// warning event InvalidEnvironmentVariableNames on the pod for each envFrom
// source whose keys were skipped. An error is a
// CreateContainerConfigError; one caused by a missing ConfigMap, Secret
// or key wraps volume.ErrSourceMissing.
func (b *Builder) Env(ctx context.Context, pod *v1.Pod, c *v1.Container) ([]provider.EnvVar, error) {
	env, skipped, err := b.Resolve(ctx, pod, c)
	if err != nil {
		return nil, err
	}
	if b.opts.Recorder != nil {
		for _, s := range skipped {
			b.opts.Recorder.Event(pod, v1.EventTypeWarning, ReasonInvalidEnvironmentVariableNames, s.Message())
		}
	}
	return env, nil
}

// Resolve resolves the container's environment as the kubelet's
// makeEnvironmentVariables does, and returns the envFrom keys it skipped:
//
//  1. envFrom sources in order (ConfigMaps and Secrets, with prefix; a
//     missing optional one is skipped; keys that are not valid names are
//     skipped and returned);
//  2. env in order, overriding: a value has its $(VAR) references
//     expanded from the variables so far and the service variables;
//     valueFrom resolves fieldRef, resourceFieldRef, configMapKeyRef and
//     secretKeyRef (optional ones skipped when missing);
//  3. the service link variables not already set.
//
// Unlike the kubelet, whose map gives a random order, the order is stable:
// a variable keeps the position where it was first set.
func (b *Builder) Resolve(ctx context.Context, pod *v1.Pod, c *v1.Container) ([]provider.EnvVar, []SkippedKeys, error) {
	if !b.services.HasSynced() {
		return nil, nil, errors.New("services have not yet been read at least once, cannot construct envvars")
	}
	enableServiceLinks := pod.Spec.EnableServiceLinks == nil || *pod.Spec.EnableServiceLinks
	services, err := serviceEnv(b.lister, pod.Namespace, enableServiceLinks)
	if err != nil {
		return nil, nil, err
	}
	serviceMap := envMap(services)

	r := &resolution{b: b, ctx: ctx, pod: pod, configMaps: map[string]*v1.ConfigMap{}, secrets: map[string]*v1.Secret{}, values: map[string]string{}}
	var skipped []SkippedKeys
	for _, from := range c.EnvFrom {
		s, err := r.envFrom(from)
		if err != nil {
			return nil, nil, err
		}
		if len(s.Keys) > 0 {
			skipped = append(skipped, s)
		}
	}

	mapping := expansion.MappingFuncFor(r.values, serviceMap)
	for i := range c.Env {
		e := &c.Env[i]
		value := e.Value
		if value != "" {
			value = expansion.Expand(value, mapping)
		} else if e.ValueFrom != nil {
			var ok bool
			value, ok, err = r.valueFrom(c, e)
			if err != nil {
				return nil, nil, fmt.Errorf("env %s: %w", e.Name, err)
			}
			if !ok {
				continue
			}
		}
		r.set(e.Name, value)
	}

	env := make([]provider.EnvVar, 0, len(r.order)+len(services))
	for _, name := range r.order {
		env = append(env, provider.EnvVar{Name: name, Value: r.values[name]})
	}
	for _, s := range services {
		if _, ok := r.values[s.Name]; !ok {
			env = append(env, s)
		}
	}
	return env, skipped, nil
}

// resolution is the state of one Resolve.
type resolution struct {
	b   *Builder
	ctx context.Context
	pod *v1.Pod
	// Objects read once per resolution.
	configMaps map[string]*v1.ConfigMap
	secrets    map[string]*v1.Secret
	// values by name and the order of first appearance.
	values map[string]string
	order  []string
}

func (r *resolution) set(name, value string) {
	if _, ok := r.values[name]; !ok {
		r.order = append(r.order, name)
	}
	r.values[name] = value
}

func (r *resolution) configMap(name string) (*v1.ConfigMap, error) {
	if cm, ok := r.configMaps[name]; ok {
		return cm, nil
	}
	cm, err := r.b.objects.ConfigMap(r.ctx, r.pod.Namespace, name)
	if err != nil {
		return nil, err
	}
	r.configMaps[name] = cm
	return cm, nil
}

func (r *resolution) secret(name string) (*v1.Secret, error) {
	if s, ok := r.secrets[name]; ok {
		return s, nil
	}
	s, err := r.b.objects.Secret(r.ctx, r.pod.Namespace, name)
	if err != nil {
		return nil, err
	}
	r.secrets[name] = s
	return s, nil
}

func (r *resolution) validName(name string) bool {
	if r.b.opts.StrictEnvVarNames {
		return len(validation.IsEnvVarName(name)) == 0
	}
	return len(validation.IsRelaxedEnvVarName(name)) == 0
}

// envFrom adds the keys of one envFrom source in sorted key order.
func (r *resolution) envFrom(from v1.EnvFromSource) (SkippedKeys, error) {
	data := map[string]string{}
	var skipped SkippedKeys
	switch {
	case from.ConfigMapRef != nil:
		optional := from.ConfigMapRef.Optional != nil && *from.ConfigMapRef.Optional
		cm, err := r.configMap(from.ConfigMapRef.Name)
		if err != nil {
			if optional && errors.Is(err, volume.ErrSourceMissing) {
				return skipped, nil
			}
			return skipped, err
		}
		for k, v := range cm.Data {
			data[k] = v
		}
		skipped = SkippedKeys{Kind: "configMap", Namespace: r.pod.Namespace, Name: cm.Name}
	case from.SecretRef != nil:
		optional := from.SecretRef.Optional != nil && *from.SecretRef.Optional
		s, err := r.secret(from.SecretRef.Name)
		if err != nil {
			if optional && errors.Is(err, volume.ErrSourceMissing) {
				return skipped, nil
			}
			return skipped, err
		}
		for k, v := range s.Data {
			data[k] = string(v)
		}
		skipped = SkippedKeys{Kind: "secret", Namespace: r.pod.Namespace, Name: s.Name}
	default:
		return skipped, nil
	}
	keys := make([]string, 0, len(data))
	for k := range data {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		name := from.Prefix + k
		if !r.validName(name) {
			skipped.Keys = append(skipped.Keys, name)
			continue
		}
		r.set(name, data[k])
	}
	return skipped, nil
}

// valueFrom resolves one env var's source; ok is false when an optional
// source is missing and the variable is skipped.
func (r *resolution) valueFrom(c *v1.Container, e *v1.EnvVar) (value string, ok bool, err error) {
	from := e.ValueFrom
	switch {
	case from.FieldRef != nil:
		v, err := volume.PodFieldValue(r.pod, from.FieldRef, r.b.opts.NodeIPs)
		return v, err == nil, err
	case from.ResourceFieldRef != nil:
		var alloc v1.ResourceList
		if r.b.opts.Allocatable != nil {
			alloc = r.b.opts.Allocatable()
		}
		v, err := volume.ContainerResourceValue(from.ResourceFieldRef, r.pod, c, alloc)
		return v, err == nil, err
	case from.ConfigMapKeyRef != nil:
		ref := from.ConfigMapKeyRef
		optional := ref.Optional != nil && *ref.Optional
		cm, err := r.configMap(ref.Name)
		if err != nil {
			if optional && errors.Is(err, volume.ErrSourceMissing) {
				return "", false, nil
			}
			return "", false, err
		}
		v, found := cm.Data[ref.Key]
		if !found {
			if optional {
				return "", false, nil
			}
			return "", false, &volume.MissingError{Kind: "configmap", Namespace: r.pod.Namespace, Name: ref.Name, Key: ref.Key}
		}
		return v, true, nil
	case from.SecretKeyRef != nil:
		ref := from.SecretKeyRef
		optional := ref.Optional != nil && *ref.Optional
		s, err := r.secret(ref.Name)
		if err != nil {
			if optional && errors.Is(err, volume.ErrSourceMissing) {
				return "", false, nil
			}
			return "", false, err
		}
		v, found := s.Data[ref.Key]
		if !found {
			if optional {
				return "", false, nil
			}
			return "", false, &volume.MissingError{Kind: "secret", Namespace: r.pod.Namespace, Name: ref.Name, Key: ref.Key}
		}
		return string(v), true, nil
	case from.FileKeyRef != nil:
		return "", false, errors.New("valueFrom.fileKeyRef is not supported")
	}
	return "", true, nil
}

func joinSorted(s []string) string {
	s = slices.Clone(s)
	sort.Strings(s)
	return strings.Join(slices.Compact(s), ", ")
}
