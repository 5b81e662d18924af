package env

import (
	"context"
	"errors"
	"net"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2/ktesting"

	"github.com/krustlet/krustlet-go/pkg/provider"
	"github.com/krustlet/krustlet-go/pkg/volume"
)

type fixture struct {
	b        *Builder
	vm       *volume.Manager
	client   *fake.Clientset
	recorder *record.FakeRecorder
	ctx      context.Context
}

func newFixture(t *testing.T, strict bool, objs ...runtime.Object) *fixture {
	t.Helper()
	_, ctx := ktesting.NewTestContext(t)
	ctx, cancel := context.WithCancel(ctx)
	client := fake.NewClientset(objs...)
	vm, err := volume.NewManager(volume.Options{Client: client, Tmpfs: volume.TmpfsNever})
	if err != nil {
		t.Fatal(err)
	}
	recorder := record.NewFakeRecorder(10)
	b, err := NewBuilder(Options{
		Client:   client,
		Objects:  vm.Objects(),
		SubPaths: vm,
		NodeIPs:  []net.IP{net.ParseIP("10.0.0.5"), net.ParseIP("fd00::5")},
		Allocatable: func() v1.ResourceList {
			return v1.ResourceList{v1.ResourceCPU: resource.MustParse("4"), v1.ResourceMemory: resource.MustParse("8Gi")}
		},
		Recorder:          recorder,
		StrictEnvVarNames: strict,
	})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = b.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	if !cache.WaitForCacheSync(ctx.Done(), b.HasSynced) {
		t.Fatal("services never synced")
	}
	return &fixture{b: b, vm: vm, client: client, recorder: recorder, ctx: ctx}
}

func newPod(containers ...v1.Container) *v1.Pod {
	return &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: "web", Namespace: "ns", UID: "uid-1",
			Labels:      map[string]string{"app": "web"},
			Annotations: map[string]string{"note": "hi"},
		},
		Spec: v1.PodSpec{NodeName: "node-1", ServiceAccountName: "sa", Containers: containers},
	}
}

func configMap(name string, data map[string]string) *v1.ConfigMap {
	return &v1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns"}, Data: data}
}

func secret(name string, data map[string]string) *v1.Secret {
	s := &v1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns"}, Data: map[string][]byte{}}
	for k, v := range data {
		s.Data[k] = []byte(v)
	}
	return s
}

func service(ns, name, ip string, ports ...v1.ServicePort) *v1.Service {
	return &v1.Service{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, Spec: v1.ServiceSpec{ClusterIP: ip, Ports: ports}}
}

func ptr[T any](v T) *T { return &v }

func field(path string) *v1.EnvVarSource {
	return &v1.EnvVarSource{FieldRef: &v1.ObjectFieldSelector{APIVersion: "v1", FieldPath: path}}
}

func names(env []provider.EnvVar) []string {
	var out []string
	for _, e := range env {
		out = append(out, e.Name)
	}
	return out
}

func TestEnvFromEverySource(t *testing.T) {
	f := newFixture(t, false,
		configMap("cfg", map[string]string{"LOG_LEVEL": "debug", "PORT": "8080", "SHARED": "from-cm"}),
		configMap("single", map[string]string{"greeting": "hello"}),
		secret("creds", map[string]string{"USER": "admin", "PASS": "s3cr3t"}),
	)
	c := v1.Container{
		Name: "app",
		Resources: v1.ResourceRequirements{
			Limits:   v1.ResourceList{v1.ResourceMemory: resource.MustParse("64Mi")},
			Requests: v1.ResourceList{v1.ResourceCPU: resource.MustParse("250m")},
		},
		EnvFrom: []v1.EnvFromSource{
			{ConfigMapRef: &v1.ConfigMapEnvSource{LocalObjectReference: v1.LocalObjectReference{Name: "cfg"}}},
			{Prefix: "DB_", SecretRef: &v1.SecretEnvSource{LocalObjectReference: v1.LocalObjectReference{Name: "creds"}}},
		},
		Env: []v1.EnvVar{
			{Name: "PLAIN", Value: "value"},
			{Name: "EMPTY"},
			{Name: "SHARED", Value: "from-env"}, // overrides envFrom, keeps its place
			{Name: "POD_NAME", ValueFrom: field("metadata.name")},
			{Name: "POD_NAMESPACE", ValueFrom: field("metadata.namespace")},
			{Name: "POD_UID", ValueFrom: field("metadata.uid")},
			{Name: "APP", ValueFrom: field("metadata.labels['app']")},
			{Name: "NOTE", ValueFrom: field("metadata.annotations['note']")},
			{Name: "NODE", ValueFrom: field("spec.nodeName")},
			{Name: "SA", ValueFrom: field("spec.serviceAccountName")},
			{Name: "HOST_IP", ValueFrom: field("status.hostIP")},
			{Name: "HOST_IPS", ValueFrom: field("status.hostIPs")},
			{Name: "POD_IP", ValueFrom: field("status.podIP")},
			{Name: "POD_IPS", ValueFrom: field("status.podIPs")},
			{Name: "MEM_MI", ValueFrom: &v1.EnvVarSource{ResourceFieldRef: &v1.ResourceFieldSelector{Resource: "limits.memory", Divisor: resource.MustParse("1Mi")}}},
			{Name: "CPU_LIMIT", ValueFrom: &v1.EnvVarSource{ResourceFieldRef: &v1.ResourceFieldSelector{Resource: "limits.cpu"}}},
			{Name: "CPU_REQ_M", ValueFrom: &v1.EnvVarSource{ResourceFieldRef: &v1.ResourceFieldSelector{Resource: "requests.cpu", Divisor: resource.MustParse("1m")}}},
			{Name: "GREETING", ValueFrom: &v1.EnvVarSource{ConfigMapKeyRef: &v1.ConfigMapKeySelector{LocalObjectReference: v1.LocalObjectReference{Name: "single"}, Key: "greeting"}}},
			{Name: "PASSWORD", ValueFrom: &v1.EnvVarSource{SecretKeyRef: &v1.SecretKeySelector{LocalObjectReference: v1.LocalObjectReference{Name: "creds"}, Key: "PASS"}}},
			{Name: "URL", Value: "http://$(POD_IP):$(PORT)/$(GREETING)"},
		},
	}
	pod := newPod(c)
	env, err := f.b.Env(f.ctx, pod, &pod.Spec.Containers[0])
	if err != nil {
		t.Fatal(err)
	}
	want := []provider.EnvVar{
		{Name: "LOG_LEVEL", Value: "debug"},
		{Name: "PORT", Value: "8080"},
		{Name: "SHARED", Value: "from-env"},
		{Name: "DB_PASS", Value: "s3cr3t"},
		{Name: "DB_USER", Value: "admin"},
		{Name: "PLAIN", Value: "value"},
		{Name: "EMPTY", Value: ""},
		{Name: "POD_NAME", Value: "web"},
		{Name: "POD_NAMESPACE", Value: "ns"},
		{Name: "POD_UID", Value: "uid-1"},
		{Name: "APP", Value: "web"},
		{Name: "NOTE", Value: "hi"},
		{Name: "NODE", Value: "node-1"},
		{Name: "SA", Value: "sa"},
		{Name: "HOST_IP", Value: "10.0.0.5"},
		{Name: "HOST_IPS", Value: "10.0.0.5,fd00::5"},
		{Name: "POD_IP", Value: "10.0.0.5"},
		{Name: "POD_IPS", Value: "10.0.0.5,fd00::5"},
		{Name: "MEM_MI", Value: "64"},
		{Name: "CPU_LIMIT", Value: "4"}, // no limit: node allocatable
		{Name: "CPU_REQ_M", Value: "250"},
		{Name: "GREETING", Value: "hello"},
		{Name: "PASSWORD", Value: "s3cr3t"},
		{Name: "URL", Value: "http://10.0.0.5:8080/hello"},
	}
	if !reflect.DeepEqual(env, want) {
		t.Errorf("env =\n%v\nwant\n%v", env, want)
	}
	select {
	case e := <-f.recorder.Events:
		t.Errorf("unexpected event %q", e)
	default:
	}
}

func TestEnvMissingSources(t *testing.T) {
	objs := []runtime.Object{configMap("cfg", map[string]string{"a": "A"}), secret("s", map[string]string{"a": "A"})}
	cmKey := func(name, key string, optional bool) *v1.EnvVarSource {
		return &v1.EnvVarSource{ConfigMapKeyRef: &v1.ConfigMapKeySelector{LocalObjectReference: v1.LocalObjectReference{Name: name}, Key: key, Optional: ptr(optional)}}
	}
	secretKey := func(name, key string, optional bool) *v1.EnvVarSource {
		return &v1.EnvVarSource{SecretKeyRef: &v1.SecretKeySelector{LocalObjectReference: v1.LocalObjectReference{Name: name}, Key: key, Optional: ptr(optional)}}
	}
	cases := []struct {
		name    string
		env     []v1.EnvVar
		from    []v1.EnvFromSource
		wantErr string
		want    []string
	}{
		{name: "configMap missing", env: []v1.EnvVar{{Name: "X", ValueFrom: cmKey("nope", "a", false)}}, wantErr: `configmap "nope" not found`},
		{name: "configMap missing, optional", env: []v1.EnvVar{{Name: "X", ValueFrom: cmKey("nope", "a", true)}, {Name: "Y", Value: "y"}}, want: []string{"Y"}},
		{name: "configMap key missing", env: []v1.EnvVar{{Name: "X", ValueFrom: cmKey("cfg", "b", false)}}, wantErr: "couldn't find key b in configmap ns/cfg"},
		{name: "configMap key missing, optional", env: []v1.EnvVar{{Name: "X", ValueFrom: cmKey("cfg", "b", true)}}, want: nil},
		{name: "secret missing", env: []v1.EnvVar{{Name: "X", ValueFrom: secretKey("nope", "a", false)}}, wantErr: `secret "nope" not found`},
		{name: "secret missing, optional", env: []v1.EnvVar{{Name: "X", ValueFrom: secretKey("nope", "a", true)}}, want: nil},
		{name: "secret key missing", env: []v1.EnvVar{{Name: "X", ValueFrom: secretKey("s", "b", false)}}, wantErr: "couldn't find key b in secret ns/s"},
		{name: "secret key missing, optional", env: []v1.EnvVar{{Name: "X", ValueFrom: secretKey("s", "b", true)}}, want: nil},
		{name: "envFrom configMap missing", from: []v1.EnvFromSource{{ConfigMapRef: &v1.ConfigMapEnvSource{LocalObjectReference: v1.LocalObjectReference{Name: "nope"}}}}, wantErr: `configmap "nope" not found`},
		{name: "envFrom configMap missing, optional", from: []v1.EnvFromSource{{ConfigMapRef: &v1.ConfigMapEnvSource{LocalObjectReference: v1.LocalObjectReference{Name: "nope"}, Optional: ptr(true)}}}, want: nil},
		{name: "envFrom secret missing", from: []v1.EnvFromSource{{SecretRef: &v1.SecretEnvSource{LocalObjectReference: v1.LocalObjectReference{Name: "nope"}}}}, wantErr: `secret "nope" not found`},
		{name: "envFrom secret missing, optional", from: []v1.EnvFromSource{{SecretRef: &v1.SecretEnvSource{LocalObjectReference: v1.LocalObjectReference{Name: "nope"}, Optional: ptr(true)}}}, want: nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, false, objs...)
			pod := newPod(v1.Container{Name: "app", Env: tc.env, EnvFrom: tc.from})
			pod.Spec.EnableServiceLinks = ptr(false)
			env, err := f.b.Env(f.ctx, pod, &pod.Spec.Containers[0])
			if tc.wantErr != "" {
				if !errors.Is(err, volume.ErrSourceMissing) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Errorf("err = %v, want one wrapping ErrSourceMissing saying %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := names(env); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("names = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestEnvFromInvalidNames(t *testing.T) {
	objs := []runtime.Object{
		configMap("cfg", map[string]string{"GOOD": "1", "1STARTS_WITH_DIGIT": "2", "dotted.name": "3", "A=B": "4"}),
		secret("s", map[string]string{"KEY": "k", "bad key": "x"}),
	}
	from := []v1.EnvFromSource{
		{ConfigMapRef: &v1.ConfigMapEnvSource{LocalObjectReference: v1.LocalObjectReference{Name: "cfg"}}},
		{Prefix: "S_", SecretRef: &v1.SecretEnvSource{LocalObjectReference: v1.LocalObjectReference{Name: "s"}}},
	}
	cases := []struct {
		name        string
		strict      bool
		wantNames   []string
		wantSkipped []SkippedKeys
		wantEvents  []string
	}{
		{
			name:      "relaxed",
			wantNames: []string{"1STARTS_WITH_DIGIT", "GOOD", "dotted.name", "S_KEY", "S_bad key"},
			wantSkipped: []SkippedKeys{
				{Kind: "configMap", Namespace: "ns", Name: "cfg", Keys: []string{"A=B"}},
			},
			wantEvents: []string{"Warning InvalidEnvironmentVariableNames Keys [A=B] from the EnvFrom configMap ns/cfg were skipped since they are considered invalid environment variable names."},
		},
		{
			name:      "strict",
			strict:    true,
			wantNames: []string{"GOOD", "dotted.name", "S_KEY"},
			wantSkipped: []SkippedKeys{
				{Kind: "configMap", Namespace: "ns", Name: "cfg", Keys: []string{"1STARTS_WITH_DIGIT", "A=B"}},
				{Kind: "secret", Namespace: "ns", Name: "s", Keys: []string{"S_bad key"}},
			},
			wantEvents: []string{
				"Warning InvalidEnvironmentVariableNames Keys [1STARTS_WITH_DIGIT, A=B] from the EnvFrom configMap ns/cfg were skipped since they are considered invalid environment variable names.",
				"Warning InvalidEnvironmentVariableNames Keys [S_bad key] from the EnvFrom secret ns/s were skipped since they are considered invalid environment variable names.",
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, tc.strict, objs...)
			pod := newPod(v1.Container{Name: "app", EnvFrom: from})
			pod.Spec.EnableServiceLinks = ptr(false)
			env, skipped, err := f.b.Resolve(f.ctx, pod, &pod.Spec.Containers[0])
			if err != nil {
				t.Fatal(err)
			}
			if got := names(env); !reflect.DeepEqual(got, tc.wantNames) {
				t.Errorf("names = %q, want %q", got, tc.wantNames)
			}
			if !reflect.DeepEqual(skipped, tc.wantSkipped) {
				t.Errorf("skipped = %+v, want %+v", skipped, tc.wantSkipped)
			}
			if _, err := f.b.Env(f.ctx, pod, &pod.Spec.Containers[0]); err != nil {
				t.Fatal(err)
			}
			for _, want := range tc.wantEvents {
				select {
				case got := <-f.recorder.Events:
					if got != want {
						t.Errorf("event %q, want %q", got, want)
					}
				default:
					t.Errorf("no event, want %q", want)
				}
			}
		})
	}
}

func TestServiceLinks(t *testing.T) {
	f := newFixture(t, false,
		service("default", "kubernetes", "10.96.0.1", v1.ServicePort{Name: "https", Port: 443, Protocol: v1.ProtocolTCP}),
		service("ns", "redis-master", "10.96.0.20", v1.ServicePort{Port: 6379}),
		service("ns", "headless", v1.ClusterIPNone, v1.ServicePort{Port: 80}),
		service("other", "elsewhere", "10.96.0.30", v1.ServicePort{Port: 80}),
	)
	pod := newPod(v1.Container{Name: "app", Env: []v1.EnvVar{
		{Name: "REDIS", Value: "$(REDIS_MASTER_SERVICE_HOST):$(REDIS_MASTER_SERVICE_PORT)"},
		{Name: "KUBERNETES_SERVICE_PORT", Value: "override"},
	}})
	env, err := f.b.Env(f.ctx, pod, &pod.Spec.Containers[0])
	if err != nil {
		t.Fatal(err)
	}
	want := []provider.EnvVar{
		{Name: "REDIS", Value: "10.96.0.20:6379"},
		{Name: "KUBERNETES_SERVICE_PORT", Value: "override"},
		{Name: "KUBERNETES_SERVICE_HOST", Value: "10.96.0.1"},
		{Name: "KUBERNETES_SERVICE_PORT_HTTPS", Value: "443"},
		{Name: "KUBERNETES_PORT", Value: "tcp://10.96.0.1:443"},
		{Name: "KUBERNETES_PORT_443_TCP", Value: "tcp://10.96.0.1:443"},
		{Name: "KUBERNETES_PORT_443_TCP_PROTO", Value: "tcp"},
		{Name: "KUBERNETES_PORT_443_TCP_PORT", Value: "443"},
		{Name: "KUBERNETES_PORT_443_TCP_ADDR", Value: "10.96.0.1"},
		{Name: "REDIS_MASTER_SERVICE_HOST", Value: "10.96.0.20"},
		{Name: "REDIS_MASTER_SERVICE_PORT", Value: "6379"},
		{Name: "REDIS_MASTER_PORT", Value: "tcp://10.96.0.20:6379"},
		{Name: "REDIS_MASTER_PORT_6379_TCP", Value: "tcp://10.96.0.20:6379"},
		{Name: "REDIS_MASTER_PORT_6379_TCP_PROTO", Value: "tcp"},
		{Name: "REDIS_MASTER_PORT_6379_TCP_PORT", Value: "6379"},
		{Name: "REDIS_MASTER_PORT_6379_TCP_ADDR", Value: "10.96.0.20"},
	}
	if !reflect.DeepEqual(env, want) {
		t.Errorf("env =\n%v\nwant\n%v", env, want)
	}

	// enableServiceLinks: false keeps the kubernetes service only.
	pod.Spec.EnableServiceLinks = ptr(false)
	pod.Spec.Containers[0].Env = nil
	env, err = f.b.Env(f.ctx, pod, &pod.Spec.Containers[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range env {
		if !strings.HasPrefix(e.Name, "KUBERNETES_") {
			t.Errorf("%s set with enableServiceLinks false", e.Name)
		}
	}
	if len(env) != 8 {
		t.Errorf("%d variables, want the 8 of the kubernetes service: %v", len(env), names(env))
	}
}

func TestEnvBeforeServicesSynced(t *testing.T) {
	client := fake.NewClientset()
	vm, _ := volume.NewManager(volume.Options{Client: client})
	b, err := NewBuilder(Options{Client: client, SubPaths: vm})
	if err != nil {
		t.Fatal(err)
	}
	pod := newPod(v1.Container{Name: "app"})
	if _, err := b.Env(context.Background(), pod, &pod.Spec.Containers[0]); err == nil || !strings.Contains(err.Error(), "services have not yet been read") {
		t.Errorf("err = %v", err)
	}
}

func TestNewBuilderValidation(t *testing.T) {
	client := fake.NewClientset()
	vm, _ := volume.NewManager(volume.Options{Client: client})
	if _, err := NewBuilder(Options{SubPaths: vm}); err == nil {
		t.Error("no client accepted")
	}
	if _, err := NewBuilder(Options{Client: client}); err == nil {
		t.Error("no SubPaths accepted")
	}
}

func TestEnvExpansion(t *testing.T) {
	f := newFixture(t, false)
	pod := newPod(v1.Container{Name: "app", Env: []v1.EnvVar{
		{Name: "A", Value: "a"},
		{Name: "B", Value: "$(A)-b"},
		{Name: "C", Value: "$(B)-c"},
		{Name: "ESCAPED", Value: "$$(A)"},
		{Name: "UNDEFINED", Value: "$(NOPE)"},
		{Name: "LATER", Value: "$(D)"}, // D is declared after: left as is
		{Name: "D", Value: "d"},
		{Name: "UNTERMINATED", Value: "x$(A"},
		{Name: "FROM_FIELD", ValueFrom: field("metadata.name")},
		{Name: "USES_FIELD", Value: "pod=$(FROM_FIELD)"},
	}})
	pod.Spec.EnableServiceLinks = ptr(false)
	env, err := f.b.Env(f.ctx, pod, &pod.Spec.Containers[0])
	if err != nil {
		t.Fatal(err)
	}
	got := envMap(env)
	for k, v := range map[string]string{
		"B": "a-b", "C": "a-b-c", "ESCAPED": "$(A)", "UNDEFINED": "$(NOPE)", "LATER": "$(D)",
		"UNTERMINATED": "x$(A", "USES_FIELD": "pod=web",
	} {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
}

func TestEnvConcurrent(t *testing.T) {
	f := newFixture(t, false, configMap("cfg", map[string]string{"A": "1"}))
	pod := newPod(v1.Container{Name: "app", EnvFrom: []v1.EnvFromSource{{ConfigMapRef: &v1.ConfigMapEnvSource{LocalObjectReference: v1.LocalObjectReference{Name: "cfg"}}}}})
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := f.b.Env(f.ctx, pod, &pod.Spec.Containers[0]); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
}

func TestArgs(t *testing.T) {
	env := []provider.EnvVar{{Name: "PORT", Value: "8080"}, {Name: "NAME", Value: "web"}}
	cases := []struct {
		name string
		c    v1.Container
		want []string
	}{
		{name: "no command: argv[0] is the container name", c: v1.Container{Name: "app"}, want: []string{"app"}},
		{name: "args only", c: v1.Container{Name: "app", Args: []string{"--port=$(PORT)", "$$(PORT)"}}, want: []string{"app", "--port=8080", "$(PORT)"}},
		{name: "command and args", c: v1.Container{Name: "app", Command: []string{"server.wasm", "$(NAME)"}, Args: []string{"-p", "$(PORT)", "$(UNSET)", "$(PORT"}},
			want: []string{"server.wasm", "web", "-p", "8080", "$(UNSET)", "$(PORT"}},
		{name: "command expands argv[0]", c: v1.Container{Name: "app", Command: []string{"$(NAME).wasm"}}, want: []string{"web.wasm"}},
	}
	b := &Builder{}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := b.Args(newPod(tc.c), &tc.c, env); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Args = %q, want %q", got, tc.want)
			}
			// Apart, for images with an entrypoint: nothing stands in for
			// a missing command.
			command, args := b.Command(&tc.c, env)
			if got := append(append([]string{}, command...), args...); len(tc.c.Command) == 0 && !reflect.DeepEqual(got, tc.want[1:]) ||
				len(tc.c.Command) > 0 && !reflect.DeepEqual(got, tc.want) || len(command) != len(tc.c.Command) {
				t.Errorf("Command = %q, %q", command, args)
			}
		})
	}
}

func TestMounts(t *testing.T) {
	f := newFixture(t, false, configMap("cfg", map[string]string{"app.conf": "x"}))
	c := v1.Container{Name: "app", VolumeMounts: []v1.VolumeMount{
		{Name: "config", MountPath: "/etc/app"},
		{Name: "scratch", MountPath: "/data"},
		{Name: "scratch", MountPath: "/ro", ReadOnly: true},
		{Name: "scratch", MountPath: "/logs", SubPathExpr: "logs/$(POD_NAME)"},
		{Name: "config", MountPath: "/etc/app.conf", SubPath: "app.conf"},
		{Name: "config", MountPath: "relative"},
	}}
	pod := newPod(c)
	pod.Spec.Volumes = []v1.Volume{
		{Name: "config", VolumeSource: v1.VolumeSource{ConfigMap: &v1.ConfigMapVolumeSource{LocalObjectReference: v1.LocalObjectReference{Name: "cfg"}}}},
		{Name: "scratch", VolumeSource: v1.VolumeSource{EmptyDir: &v1.EmptyDirVolumeSource{}}},
	}
	podDir := filepath.Join(t.TempDir(), "pod")
	paths, err := f.vm.SetUp(f.ctx, pod, podDir)
	if err != nil {
		t.Fatal(err)
	}
	env := []provider.EnvVar{{Name: "POD_NAME", Value: "web"}}
	mounts, err := f.b.Mounts(pod, &pod.Spec.Containers[0], env, paths)
	if err != nil {
		t.Fatal(err)
	}
	logs, _ := filepath.EvalSymlinks(filepath.Join(paths["scratch"], "logs", "web"))
	want := []provider.Mount{
		{HostPath: paths["config"], ContainerPath: "/etc/app", ReadOnly: true}, // forced
		{HostPath: paths["scratch"], ContainerPath: "/data"},
		{HostPath: paths["scratch"], ContainerPath: "/ro", ReadOnly: true},
		{HostPath: logs, ContainerPath: "/logs"},
		{HostPath: filepath.Join(podDir, "volume-subpaths", "config", "app", "4"), ContainerPath: "/etc/app.conf", ReadOnly: true},
		{HostPath: paths["config"], ContainerPath: "/relative", ReadOnly: true},
	}
	if !reflect.DeepEqual(mounts, want) {
		t.Errorf("mounts =\n%+v\nwant\n%+v", mounts, want)
	}
}

func TestMountsRefusals(t *testing.T) {
	f := newFixture(t, false)
	cases := []struct {
		name    string
		mount   v1.VolumeMount
		env     []provider.EnvVar
		wantErr string
	}{
		{name: "subPath with ..", mount: v1.VolumeMount{Name: "scratch", MountPath: "/x", SubPath: "../../etc"}, wantErr: "must not contain '..'"},
		{name: "absolute subPath", mount: v1.VolumeMount{Name: "scratch", MountPath: "/x", SubPath: "/etc"}, wantErr: "must not be an absolute path"},
		{name: "subPathExpr expanding to ..", mount: v1.VolumeMount{Name: "scratch", MountPath: "/x", SubPathExpr: "$(DIR)/x"}, env: []provider.EnvVar{{Name: "DIR", Value: ".."}}, wantErr: "must not contain '..'"},
		{name: "subPathExpr expanding to an absolute path", mount: v1.VolumeMount{Name: "scratch", MountPath: "/x", SubPathExpr: "$(DIR)"}, env: []provider.EnvVar{{Name: "DIR", Value: "/etc"}}, wantErr: "must not be an absolute path"},
		{name: "subPathExpr with an unset variable", mount: v1.VolumeMount{Name: "scratch", MountPath: "/x", SubPathExpr: "$(B)/$(A)"}, wantErr: "missing value for A, B"},
		{name: "subPathExpr with an empty variable", mount: v1.VolumeMount{Name: "scratch", MountPath: "/x", SubPathExpr: "$(E)"}, env: []provider.EnvVar{{Name: "E"}}, wantErr: "missing value for E"},
		{name: "unknown volume", mount: v1.VolumeMount{Name: "nope", MountPath: "/x"}, wantErr: `cannot find volume "nope" to mount into container "app"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pod := newPod(v1.Container{Name: "app", VolumeMounts: []v1.VolumeMount{tc.mount}})
			pod.Spec.Volumes = []v1.Volume{{Name: "scratch", VolumeSource: v1.VolumeSource{EmptyDir: &v1.EmptyDirVolumeSource{}}}}
			paths, err := f.vm.SetUp(f.ctx, pod, filepath.Join(t.TempDir(), "pod"))
			if err != nil {
				t.Fatal(err)
			}
			_, err = f.b.Mounts(pod, &pod.Spec.Containers[0], tc.env, paths)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("err = %v, want %q", err, tc.wantErr)
			}
		})
	}
}
