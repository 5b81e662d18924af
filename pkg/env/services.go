package env

import (
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	corelisters "k8s.io/client-go/listers/core/v1"

	"github.com/krustlet/krustlet-go/pkg/provider"
)

// This file ports the kubelet's getServiceEnvVarMap and
// pkg/kubelet/envvars (FromServices). Change: services are taken in name
// order, so the variables come in a stable order.

// masterService is the service every pod gets variables for.
const masterService = "kubernetes"

// serviceEnv returns the service link variables of a pod in namespace ns:
// those of the kubernetes service of the default namespace always, and
// those of every service of ns when enableServiceLinks is true.
func serviceEnv(lister corelisters.ServiceLister, ns string, enableServiceLinks bool) ([]provider.EnvVar, error) {
	byName := map[string]*v1.Service{}
	master, err := lister.Services(metav1.NamespaceDefault).Get(masterService)
	switch {
	case err == nil:
		if isServiceIPSet(master) {
			byName[masterService] = master
		}
	case !apierrors.IsNotFound(err):
		return nil, fmt.Errorf("failed to list services when setting up env vars: %w", err)
	}
	if enableServiceLinks {
		services, err := lister.Services(ns).List(labels.Everything())
		if err != nil {
			return nil, fmt.Errorf("failed to list services when setting up env vars: %w", err)
		}
		for _, s := range services {
			if isServiceIPSet(s) {
				byName[s.Name] = s
			}
		}
	}
	services := make([]*v1.Service, 0, len(byName))
	for _, s := range byName {
		services = append(services, s)
	}
	sort.Slice(services, func(i, j int) bool { return services[i].Name < services[j].Name })
	return FromServices(services), nil
}

// isServiceIPSet reports whether a service has a cluster IP (is not
// headless).
func isServiceIPSet(s *v1.Service) bool {
	return s.Spec.ClusterIP != v1.ClusterIPNone && s.Spec.ClusterIP != ""
}

// FromServices builds the Docker-link style variables that tell a
// container where to find services: NAME_SERVICE_HOST, NAME_SERVICE_PORT,
// NAME_SERVICE_PORT_<PORT NAME>, NAME_PORT, NAME_PORT_<port>_<PROTO>…
// Services without a cluster IP are skipped.
func FromServices(services []*v1.Service) []provider.EnvVar {
	var result []provider.EnvVar
	for _, service := range services {
		if !isServiceIPSet(service) || len(service.Spec.Ports) == 0 {
			continue
		}
		prefix := makeEnvVariableName(service.Name)
		// Host
		result = append(result, provider.EnvVar{Name: prefix + "_SERVICE_HOST", Value: service.Spec.ClusterIP})
		// First port - give it the backwards-compatible name
		name := prefix + "_SERVICE_PORT"
		result = append(result, provider.EnvVar{Name: name, Value: strconv.Itoa(int(service.Spec.Ports[0].Port))})
		// All named ports (only the first may be unnamed, checked in validation)
		for i := range service.Spec.Ports {
			sp := &service.Spec.Ports[i]
			if sp.Name != "" {
				result = append(result, provider.EnvVar{Name: name + "_" + makeEnvVariableName(sp.Name), Value: strconv.Itoa(int(sp.Port))})
			}
		}
		// Docker-compatible vars.
		result = append(result, makeLinkVariables(service)...)
	}
	return result
}

func makeEnvVariableName(str string) string {
	return strings.ToUpper(strings.ReplaceAll(str, "-", "_"))
}

func makeLinkVariables(service *v1.Service) []provider.EnvVar {
	prefix := makeEnvVariableName(service.Name)
	var all []provider.EnvVar
	for i := range service.Spec.Ports {
		sp := &service.Spec.Ports[i]
		protocol := string(v1.ProtocolTCP)
		if sp.Protocol != "" {
			protocol = string(sp.Protocol)
		}
		hostPort := net.JoinHostPort(service.Spec.ClusterIP, strconv.Itoa(int(sp.Port)))
		if i == 0 {
			// Docker special-cases the first port.
			all = append(all, provider.EnvVar{
				Name:  prefix + "_PORT",
				Value: fmt.Sprintf("%s://%s", strings.ToLower(protocol), hostPort),
			})
		}
		portPrefix := fmt.Sprintf("%s_PORT_%d_%s", prefix, sp.Port, strings.ToUpper(protocol))
		all = append(all,
			provider.EnvVar{Name: portPrefix, Value: fmt.Sprintf("%s://%s", strings.ToLower(protocol), hostPort)},
			provider.EnvVar{Name: portPrefix + "_PROTO", Value: strings.ToLower(protocol)},
			provider.EnvVar{Name: portPrefix + "_PORT", Value: strconv.Itoa(int(sp.Port))},
			provider.EnvVar{Name: portPrefix + "_ADDR", Value: service.Spec.ClusterIP},
		)
	}
	return all
}
