package credentials

import (
	"encoding/base64"
	"reflect"
	"strings"
	"testing"

	"github.com/krustlet/krustlet-go/pkg/provider"
)

func TestParseDockerConfig(t *testing.T) {
	auth := base64.StdEncoding.EncodeToString([]byte("alice:s3cr:et"))
	got, err := ParseDockerConfigJSON([]byte(`{"auths": {
		"https://index.docker.io/v1/": {"auth": "` + auth + `"},
		"ghcr.io": {"username": "bob", "password": "pw"},
		"quay.io": {"identitytoken": "refresh", "registrytoken": "access"}
	}, "credsStore": "desktop"}`))
	if err != nil {
		t.Fatal(err)
	}
	want := []provider.Credential{
		{Registry: "ghcr.io", Username: "bob", Password: "pw"},
		{Registry: "https://index.docker.io/v1/", Username: "alice", Password: "s3cr:et"},
		{Registry: "quay.io", IdentityToken: "refresh", RegistryToken: "access"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("config.json: got %+v, want %+v", got, want)
	}

	// The legacy format, directly or in place of config.json.
	legacy := []byte(`{"registry.example:5000": {"auth": "` + auth + `", "email": "a@example.com"}}`)
	for name, parse := range map[string]func([]byte) ([]provider.Credential, error){"dockercfg": ParseDockerCfg, "config.json": ParseDockerConfigJSON} {
		got, err := parse(legacy)
		if err != nil || len(got) != 1 || got[0] != (provider.Credential{Registry: "registry.example:5000", Username: "alice", Password: "s3cr:et"}) {
			t.Errorf("%s: %+v, %v", name, got, err)
		}
	}

	if got, err := ParseDockerConfigJSON([]byte(`{"credsStore": "desktop"}`)); err != nil || len(got) != 0 {
		t.Errorf("config without auths: %+v, %v", got, err)
	}
	if _, err := ParseDockerConfigJSON([]byte(`{"auths": {"a.io": {"auth": "!!"}}}`)); err == nil || !strings.Contains(err.Error(), "base64") {
		t.Errorf("bad auth: %v", err)
	}
	if _, err := ParseDockerConfigJSON([]byte(`not json`)); err == nil {
		t.Error("not JSON: no error")
	}

	// DockerConfigJSON round-trips.
	b, err := DockerConfigJSON(want...)
	if err != nil {
		t.Fatal(err)
	}
	if back, err := ParseDockerConfigJSON(b); err != nil || !reflect.DeepEqual(back, want) {
		t.Errorf("round trip: %+v, %v", back, err)
	}
}

// The cases of the kubelet's keyring tests (credentialprovider/keyring_test.go)
// that apply to one repository, and image references as pods name them.
func TestMatch(t *testing.T) {
	cred := func(registry string) provider.Credential {
		return provider.Credential{Registry: registry, Username: registry}
	}
	names := func(cs []provider.Credential) string {
		var s []string
		for _, c := range cs {
			s = append(s, c.Registry)
		}
		return strings.Join(s, ",")
	}
	for _, tc := range []struct {
		name  string
		keys  []string
		image string
		match string
	}{
		{"host", []string{"quay.io"}, "quay.io/foo/bar", "quay.io"},
		{"scheme ignored", []string{"https://quay.io"}, "quay.io/foo", "https://quay.io"},
		{"v1 path ignored", []string{"https://quay.io/v1/"}, "quay.io/foo", "https://quay.io/v1/"},
		{"other host", []string{"quay.io"}, "ghcr.io/foo", ""},
		{"subdomain is another host", []string{"example.com"}, "registry.example.com/foo", ""},
		{"wildcard", []string{"*.example.com"}, "registry.example.com/foo", "*.example.com"},
		{"wildcard matches one label", []string{"*.example.com"}, "a.b.example.com/foo", ""},
		{"wildcard needs a label", []string{"*.example.com"}, "example.com/foo", ""},
		{"partial wildcard", []string{"reg*.example.com"}, "registry.example.com/foo", "reg*.example.com"},
		{"port must match", []string{"registry.example:5000"}, "registry.example/foo", ""},
		{"port", []string{"registry.example:5000"}, "registry.example:5000/foo", "registry.example:5000"},
		{"path prefix", []string{"quay.io/team"}, "quay.io/team/app", "quay.io/team"},
		{"path not a prefix", []string{"quay.io/team"}, "quay.io/other/app", ""},
		{"more specific first", []string{"quay.io", "quay.io/team", "quay.io/team/app"}, "quay.io/team/app", "quay.io/team/app,quay.io/team,quay.io"},
		{"equal keys keep their order", []string{"https://quay.io", "quay.io"}, "quay.io/a", "https://quay.io,quay.io"},
		{"docker hub by index.docker.io", []string{"https://index.docker.io/v1/"}, "docker.io/library/nginx", "https://index.docker.io/v1/"},
		{"docker hub by docker.io", []string{"docker.io"}, "docker.io/user/app", "docker.io"},
		{"index.docker.io is not for other registries", []string{"index.docker.io"}, "quay.io/app", ""},
		{"tag dropped", []string{"quay.io/team"}, "quay.io/team:v1", "quay.io/team"},
		{"digest dropped", []string{"quay.io/team/app"}, "quay.io/team/app:v1@sha256:" + strings.Repeat("a", 64), "quay.io/team/app"},
		{"port and tag", []string{"registry.example:5000"}, "registry.example:5000/foo:v1", "registry.example:5000"},
		{"short name is on docker hub", []string{"docker.io", "quay.io"}, "nginx:1.27", "docker.io"},
		{"short name by index.docker.io", []string{"https://index.docker.io/v1/"}, "nginx", "https://index.docker.io/v1/"},
		{"docker hub user repository", []string{"docker.io/user"}, "user/app:v1", "docker.io/user"},
		{"official image path", []string{"docker.io/library"}, "index.docker.io/nginx", "docker.io/library"},
		{"localhost is a registry", []string{"localhost"}, "localhost/app", "localhost"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var creds []provider.Credential
			for _, k := range tc.keys {
				creds = append(creds, cred(k))
			}
			if got := names(Match(creds, tc.image)); got != tc.match {
				t.Errorf("Match(%v, %s) = %q, want %q", tc.keys, tc.image, got, tc.match)
			}
		})
	}
}

func TestRepositoryOf(t *testing.T) {
	for image, want := range map[string]string{
		"":                                   "",
		"nginx":                              "docker.io/library/nginx",
		"nginx:1.27":                         "docker.io/library/nginx",
		"user/app":                           "docker.io/user/app",
		"docker.io/nginx":                    "docker.io/library/nginx",
		"index.docker.io/user/app:v1":        "docker.io/user/app",
		"docker.io/library/nginx":            "docker.io/library/nginx",
		"localhost/app":                      "localhost/app",
		"Registry/app":                       "Registry/app",
		"registry.example:5000/team/app:v1":  "registry.example:5000/team/app",
		"[::1]:5000/app":                     "[::1]:5000/app",
		"ghcr.io/team/app@sha256:0123abcdef": "ghcr.io/team/app",
	} {
		if got := repositoryOf(image); got != want {
			t.Errorf("repositoryOf(%q) = %q, want %q", image, got, want)
		}
		// A repository comes back unchanged.
		if got := repositoryOf(want); got != want {
			t.Errorf("repositoryOf(%q) = %q, want it unchanged", want, got)
		}
	}
}
