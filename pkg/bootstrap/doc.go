// Package bootstrap turns a join token into a node's own credentials and
// keeps them fresh, as kubeadm join and the kubelet's certificate/bootstrap
// do:
//
//   - Discover reads kube-public/cluster-info without credentials, checks
//     the JWS signature the controller-manager's bootstrapsigner made with
//     the token, pins the cluster CA by its public-key hash, and returns a
//     bootstrap kubeconfig (kubeadm's token discovery).
//   - DiscoverFromFile loads a kubeconfig from a file or an https:// URL,
//     checks that the API server it names answers over TLS verified with
//     the CA it names, and returns a bootstrap kubeconfig with a TLS
//     bootstrap token or the file's own credentials (kubeadm's file
//     discovery).
//   - LoadClientConfig and NewClientCertificateManager request a client
//     certificate (CN system:node:NAME, O system:nodes, signer
//     kubernetes.io/kube-apiserver-client-kubelet) with the bootstrap
//     credentials when no valid one exists, store it under the cert dir
//     (key mode 0600) with a kubeconfig that points at it, and rotate it
//     before it expires with client-go's certificate.Manager.
//   - UpdateTransport makes a rest.Config follow the manager: every new TLS
//     handshake presents the current certificate and open connections are
//     closed when it changes, so API clients pick up a rotated certificate
//     without a restart (ported from the kubelet's
//     pkg/kubelet/certificate/transport.go).
//   - NewServingCertificateManager requests and rotates the serving
//     certificate (signer kubernetes.io/kubelet-serving) with the node's
//     host name and addresses as SANs.
//
// Discovery errors read as kubeadm join's, word for word where kubeadm has
// words for them ("couldn't validate the identity of the API Server: ..."),
// so that what is known about a failed kubeadm join applies; krustlet's own
// detail follows in parentheses.
//
// Changes from krustlet: certificates.k8s.io/v1 instead of v1beta1 (gone
// since Kubernetes 1.22), ECDSA P-256 keys, rotation of both certificates,
// and kubeadm's token discovery with CA pinning and file discovery.
package bootstrap
