package credentials

import (
	"context"
	"errors"
	"fmt"
	"os"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"

	"github.com/krustlet/krustlet-go/pkg/provider"
)

// Source gives the registry credentials for a pod's images, as the kubelet
// assembles them: the pod's imagePullSecrets, then those of its service
// account that the pod does not list already, then the node's Docker config
// file. It implements provider.CredentialSource and is safe for
// concurrent use.
//
// Secrets and the service account are read through Client with the node's
// credentials: the Node authorizer lets a node get the Secrets its pods
// reference and its pods' service accounts. A Secret referenced by the
// service account only is usually copied into the pod's imagePullSecrets
// by the ServiceAccount admission plugin; when it is not, the node may be
// forbidden to read it, and it is skipped.
type Source struct {
	// Client reads Secrets and ServiceAccounts. Nil: only NodeConfig.
	Client kubernetes.Interface
	// NodeConfig is a Docker config.json with the node's own credentials
	// (--registry-config), read at every call so that edits apply at once.
	// Empty: none.
	NodeConfig string
}

// Credentials returns the credentials for pod's images, in the order to
// try them; Match picks those for one image. An error lists what could not be read (a missing Secret, a
// malformed config); the credentials that could be read are returned with
// it, and should be used.
func (s *Source) Credentials(ctx context.Context, pod *v1.Pod) ([]provider.Credential, error) {
	logger := klog.FromContext(ctx)
	var (
		creds []provider.Credential
		errs  []error
	)
	names := make([]string, 0, len(pod.Spec.ImagePullSecrets))
	seen := map[string]bool{}
	for _, r := range pod.Spec.ImagePullSecrets {
		if r.Name != "" && !seen[r.Name] {
			seen[r.Name] = true
			names = append(names, r.Name)
		}
	}
	fromSA := map[string]bool{}
	if s.Client != nil {
		sa := pod.Spec.ServiceAccountName
		if sa == "" {
			sa = "default"
		}
		acct, err := s.Client.CoreV1().ServiceAccounts(pod.Namespace).Get(ctx, sa, metav1.GetOptions{})
		switch {
		case err == nil:
			for _, r := range acct.ImagePullSecrets {
				if r.Name != "" && !seen[r.Name] {
					seen[r.Name] = true
					fromSA[r.Name] = true
					names = append(names, r.Name)
				}
			}
		case apierrors.IsNotFound(err) || apierrors.IsForbidden(err):
			logger.V(4).Info("Service account not readable; using the pod's pull secrets only", "pod", klog.KObj(pod), "serviceAccount", sa, "err", err)
		default:
			errs = append(errs, fmt.Errorf("reading service account %s/%s: %w", pod.Namespace, sa, err))
		}
		for _, name := range names {
			c, err := s.secretCredentials(ctx, pod.Namespace, name)
			if err != nil {
				if fromSA[name] && apierrors.IsForbidden(err) {
					logger.V(2).Info("Skipping a pull secret of the service account that the pod does not reference", "pod", klog.KObj(pod), "secret", name)
					continue
				}
				errs = append(errs, err)
			}
			creds = append(creds, c...)
		}
	} else if len(names) > 0 {
		errs = append(errs, fmt.Errorf("pod lists image pull secrets, but the node has no API client to read them"))
	}
	if s.NodeConfig != "" {
		c, err := ReadDockerConfigFile(s.NodeConfig)
		if err != nil {
			errs = append(errs, err)
		}
		creds = append(creds, c...)
	}
	return creds, errors.Join(errs...)
}

// secretCredentials reads one pull secret. As the kubelet does, only
// Secrets of type kubernetes.io/dockerconfigjson (key .dockerconfigjson)
// and kubernetes.io/dockercfg (key .dockercfg) count.
func (s *Source) secretCredentials(ctx context.Context, ns, name string) ([]provider.Credential, error) {
	sec, err := s.Client.CoreV1().Secrets(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("reading image pull secret %s/%s: %w", ns, name, err)
	}
	var c []provider.Credential
	switch {
	case sec.Type == v1.SecretTypeDockerConfigJson && len(sec.Data[v1.DockerConfigJsonKey]) > 0:
		c, err = ParseDockerConfigJSON(sec.Data[v1.DockerConfigJsonKey])
	case sec.Type == v1.SecretTypeDockercfg && len(sec.Data[v1.DockerConfigKey]) > 0:
		c, err = ParseDockerCfg(sec.Data[v1.DockerConfigKey])
	default:
		return nil, fmt.Errorf("image pull secret %s/%s has type %q; want %s with key %s or %s with key %s",
			ns, name, sec.Type, v1.SecretTypeDockerConfigJson, v1.DockerConfigJsonKey, v1.SecretTypeDockercfg, v1.DockerConfigKey)
	}
	if err != nil {
		return c, fmt.Errorf("image pull secret %s/%s: %w", ns, name, err)
	}
	return c, nil
}

// ReadDockerConfigFile reads a Docker config.json (or .dockercfg) file.
func ReadDockerConfigFile(path string) ([]provider.Credential, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading registry config: %w", err)
	}
	c, err := ParseDockerConfigJSON(data)
	if err != nil {
		return c, fmt.Errorf("registry config %s: %w", path, err)
	}
	return c, nil
}
