package controlplane

import (
	"context"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	bootstrapapi "k8s.io/cluster-bootstrap/token/api"
	bootstraputil "k8s.io/cluster-bootstrap/token/util"
)

// NodeBootstrapGroup is the group bootstrap tokens authenticate as, the same
// group kubeadm uses, so that a node joins this cluster as it joins one made
// by kubeadm.
const NodeBootstrapGroup = "system:bootstrappers:kubeadm:default-node-token"

// CreateBootstrapToken creates a bootstrap token Secret that authenticates as
// NodeBootstrapGroup and signs cluster-info, and returns the token. A
// non-positive ttl creates a token that expired a minute ago (for tests of
// refused joins).
func CreateBootstrapToken(ctx context.Context, client kubernetes.Interface, ttl time.Duration) (string, error) {
	token, err := bootstraputil.GenerateBootstrapToken()
	if err != nil {
		return "", fmt.Errorf("generating bootstrap token: %w", err)
	}
	id, secret, _ := strings.Cut(token, ".")
	expiry := time.Now().Add(ttl)
	if ttl <= 0 {
		expiry = time.Now().Add(-time.Minute)
	}
	_, err = client.CoreV1().Secrets(metav1.NamespaceSystem).Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: bootstraputil.BootstrapTokenSecretName(id), Namespace: metav1.NamespaceSystem},
		Type:       bootstrapapi.SecretTypeBootstrapToken,
		StringData: map[string]string{
			bootstrapapi.BootstrapTokenIDKey:               id,
			bootstrapapi.BootstrapTokenSecretKey:           secret,
			bootstrapapi.BootstrapTokenExpirationKey:       expiry.UTC().Format(time.RFC3339),
			bootstrapapi.BootstrapTokenUsageAuthentication: "true",
			bootstrapapi.BootstrapTokenUsageSigningKey:     "true",
			bootstrapapi.BootstrapTokenExtraGroupsKey:      NodeBootstrapGroup,
			bootstrapapi.BootstrapTokenDescriptionKey:      "krustlet node join token",
		},
	}, metav1.CreateOptions{})
	if err != nil {
		return "", fmt.Errorf("creating bootstrap token secret: %w", err)
	}
	return token, nil
}

// installNodeBootstrap installs what `kubeadm init` installs for joining
// nodes, apart from the token itself.
func installNodeBootstrap(ctx context.Context, client kubernetes.Interface, server string, caPEM []byte) error {
	bindings := []rbacv1.ClusterRoleBinding{
		clusterRoleBinding("kubeadm:kubelet-bootstrap", "system:node-bootstrapper", NodeBootstrapGroup),
		clusterRoleBinding("kubeadm:node-autoapprove-bootstrap", "system:certificates.k8s.io:certificatesigningrequests:nodeclient", NodeBootstrapGroup),
		clusterRoleBinding("kubeadm:node-autoapprove-certificate-rotation", "system:certificates.k8s.io:certificatesigningrequests:selfnodeclient", "system:nodes"),
	}
	for i := range bindings {
		if _, err := client.RbacV1().ClusterRoleBindings().Create(ctx, &bindings[i], metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("creating ClusterRoleBinding %s: %w", bindings[i].Name, err)
		}
	}

	kubeconfig := clientcmdapi.NewConfig()
	kubeconfig.Clusters[""] = &clientcmdapi.Cluster{Server: server, CertificateAuthorityData: caPEM}
	data, err := clientcmd.Write(*kubeconfig)
	if err != nil {
		return fmt.Errorf("encoding cluster-info kubeconfig: %w", err)
	}
	ns := metav1.NamespacePublic
	if _, err := client.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: bootstrapapi.ConfigMapClusterInfo, Namespace: ns},
		Data:       map[string]string{bootstrapapi.KubeConfigKey: string(data)},
	}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating cluster-info ConfigMap: %w", err)
	}
	const role = "kubeadm:bootstrap-signer-clusterinfo"
	if _, err := client.RbacV1().Roles(ns).Create(ctx, &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: role, Namespace: ns},
		Rules: []rbacv1.PolicyRule{{
			APIGroups: []string{""}, Resources: []string{"configmaps"},
			ResourceNames: []string{bootstrapapi.ConfigMapClusterInfo}, Verbs: []string{"get"},
		}},
	}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating Role %s: %w", role, err)
	}
	if _, err := client.RbacV1().RoleBindings(ns).Create(ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: role, Namespace: ns},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: role},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: "system:anonymous"}},
	}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating RoleBinding %s: %w", role, err)
	}
	return nil
}

func clusterRoleBinding(name, role, group string) rbacv1.ClusterRoleBinding {
	return rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.GroupKind, APIGroup: rbacv1.GroupName, Name: group}},
	}
}

// WaitForClusterInfoSignature waits until the controller-manager's
// bootstrapsigner has signed kube-public/cluster-info for token.
func WaitForClusterInfoSignature(ctx context.Context, client kubernetes.Interface, token string, timeout time.Duration) error {
	id, _, _ := strings.Cut(token, ".")
	key := bootstrapapi.JWSSignatureKeyPrefix + id
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		cm, err := client.CoreV1().ConfigMaps(metav1.NamespacePublic).Get(ctx, bootstrapapi.ConfigMapClusterInfo, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		return cm.Data[key] != "", nil
	})
	if err != nil {
		return fmt.Errorf("waiting for the bootstrapsigner to sign cluster-info for token %s: %w", id, err)
	}
	return nil
}
