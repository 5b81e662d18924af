package credentials

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/krustlet/krustlet-go/pkg/provider"
)

var _ provider.CredentialSource = (*Source)(nil)

func dockerSecret(t *testing.T, name string, creds ...provider.Credential) *v1.Secret {
	t.Helper()
	b, err := DockerConfigJSON(creds...)
	if err != nil {
		t.Fatal(err)
	}
	return &v1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name},
		Type:       v1.SecretTypeDockerConfigJson,
		Data:       map[string][]byte{v1.DockerConfigJsonKey: b},
	}
}

func TestSource(t *testing.T) {
	nodeConfig := filepath.Join(t.TempDir(), "config.json")
	nodeJSON, _ := DockerConfigJSON(provider.Credential{Registry: "node.example", Username: "node", Password: "n"})
	if err := os.WriteFile(nodeConfig, nodeJSON, 0o600); err != nil {
		t.Fatal(err)
	}
	objects := []runtime.Object{
		dockerSecret(t, "pod-secret", provider.Credential{Registry: "a.example", Username: "pod", Password: "p"}),
		dockerSecret(t, "sa-secret", provider.Credential{Registry: "b.example", Username: "sa", Password: "s"}),
		&v1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "cfg-secret"},
			Type:       v1.SecretTypeDockercfg,
			Data:       map[string][]byte{v1.DockerConfigKey: []byte(`{"c.example": {"username": "cfg", "password": "c"}}`)},
		},
		&v1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "opaque"}, Type: v1.SecretTypeOpaque},
		&v1.ServiceAccount{
			ObjectMeta:       metav1.ObjectMeta{Namespace: "ns", Name: "builder"},
			ImagePullSecrets: []v1.LocalObjectReference{{Name: "pod-secret"}, {Name: "sa-secret"}, {Name: "forbidden"}},
		},
	}
	pod := &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "p"},
		Spec: v1.PodSpec{
			ServiceAccountName: "builder",
			ImagePullSecrets:   []v1.LocalObjectReference{{Name: "pod-secret"}, {Name: "cfg-secret"}, {Name: "missing"}, {Name: "opaque"}, {Name: "pod-secret"}},
		},
	}
	client := fake.NewClientset(objects...)
	// The Node authorizer refuses Secrets that no pod of the node names.
	client.PrependReactor("get", "secrets", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if a.(k8stesting.GetAction).GetName() == "forbidden" {
			return true, nil, apierrors.NewForbidden(schema.GroupResource{Resource: "secrets"}, "forbidden", nil)
		}
		return false, nil, nil
	})
	src := &Source{Client: client, NodeConfig: nodeConfig}
	creds, err := src.Credentials(context.Background(), pod)
	var users []string
	for _, c := range creds {
		users = append(users, c.Username)
	}
	if got, want := strings.Join(users, ","), "pod,cfg,sa,node"; got != want {
		t.Errorf("credentials from %s, want %s", got, want)
	}
	for _, want := range []string{`"missing" not found`, `ns/opaque has type "Opaque"`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v, want it to mention %s", err, want)
		}
	}
	if err != nil && strings.Contains(err.Error(), "forbidden") {
		t.Errorf("a service account secret the node may not read is an error: %v", err)
	}

	// No client: the node's config only; a pod's secrets are reported.
	creds, err = (&Source{NodeConfig: nodeConfig}).Credentials(context.Background(), pod)
	if len(creds) != 1 || creds[0].Username != "node" || err == nil {
		t.Errorf("without client: %+v, %v", creds, err)
	}
	// A missing service account is not an error.
	plain := &v1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "q"}}
	if creds, err := (&Source{Client: client}).Credentials(context.Background(), plain); err != nil || len(creds) != 0 {
		t.Errorf("pod without secrets: %+v, %v", creds, err)
	}
	// An unreadable node config is an error, the pod's credentials still come.
	creds, err = (&Source{Client: client, NodeConfig: filepath.Join(t.TempDir(), "nope")}).Credentials(context.Background(), pod)
	if len(creds) != 3 || err == nil || !strings.Contains(err.Error(), "registry config") {
		t.Errorf("missing node config: %+v, %v", creds, err)
	}
}
