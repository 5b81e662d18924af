// Package credentials resolves the registry credentials of a pod for any
// provider that pulls images: it reads the pod's image pull secrets, those
// of its service account and the node's Docker config file (Source), parses
// and writes Docker config files (ParseDockerConfigJSON, ParseDockerCfg,
// ReadDockerConfigFile, DockerConfigJSON), and picks, for one image, the
// credentials that apply and the order to try them in (Match). Results are
// provider.Credential values; this package knows nothing of how a provider
// pulls.
//
// # Where it comes from
//
// The matching is a port of the kubelet's credentialprovider package
// (k8s.io/kubernetes/pkg/credentialprovider): BasicDockerKeyring.Add and
// Lookup, URLsMatch, and the Docker Hub fallback to index.docker.io. The
// secret types are those of its secrets.MakeDockerKeyring
// (kubernetes.io/dockerconfigjson and kubernetes.io/dockercfg), and the
// Docker config formats those of its config.go; Match reduces an image
// reference to its repository as the kubelet's parsers.ParseImageName
// does. What changed:
//
//   - The kubelet keeps one keyring per source and tries the pod's secrets
//     before the node's; here the sources arrive as one ordered list (the
//     pod's secrets, its service account's, the node's), and among equal
//     keys the earlier credential comes first.
//   - The kubelet reads only the pod's imagePullSecrets and relies on the
//     ServiceAccount admission plugin to copy the service account's into
//     them; Source also reads the service account's, and skips those the
//     node may not read.
//   - A pull secret that cannot be read or used (missing, of another
//     type, malformed) is reported in the error of Source.Credentials, and
//     the credentials that could be read come with it; the kubelet skips
//     such a secret or fails the pull.
//   - The node's credentials come from one file (--registry-config), read
//     at every call, not from the kubelet's search path of config.json and
//     .dockercfg locations. Credential helpers (credsStore, credHelpers)
//     and the kubelet's credential provider plugins are not supported.
//
// # Use
//
//	src := &credentials.Source{Client: client, NodeConfig: "/etc/krustlet/config.json"}
//	all, err := src.Credentials(ctx, pod) // use all even when err != nil
//	for _, c := range credentials.Match(all, pod.Spec.Containers[0].Image) {
//		// try c.Username/c.Password (or the tokens) until one is accepted
//	}
package credentials
