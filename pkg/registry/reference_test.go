package registry

import (
	"errors"
	"strings"
	"testing"
)

func TestParseReference(t *testing.T) {
	const d = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	for _, tc := range []struct {
		in, want, repo, object string
	}{
		{"nginx", "docker.io/library/nginx:latest", "docker.io/library/nginx", "latest"},
		{"nginx:1.27", "docker.io/library/nginx:1.27", "docker.io/library/nginx", "1.27"},
		{"user/app", "docker.io/user/app:latest", "docker.io/user/app", "latest"},
		{"docker.io/nginx", "docker.io/library/nginx:latest", "docker.io/library/nginx", "latest"},
		{"index.docker.io/user/app:v1", "docker.io/user/app:v1", "docker.io/user/app", "v1"},
		{"localhost/app", "localhost/app:latest", "localhost/app", "latest"},
		{"localhost:5000/app:v1", "localhost:5000/app:v1", "localhost:5000/app", "v1"},
		{"127.0.0.1:5000/team/app:v1", "127.0.0.1:5000/team/app:v1", "127.0.0.1:5000/team/app", "v1"},
		{"ghcr.io/org/sub/app", "ghcr.io/org/sub/app:latest", "ghcr.io/org/sub/app", "latest"},
		{"Registry/app", "Registry/app:latest", "Registry/app", "latest"},
		{"[::1]:5000/app:v1", "[::1]:5000/app:v1", "[::1]:5000/app", "v1"},
		{"ghcr.io/app@" + d, "ghcr.io/app@" + d, "ghcr.io/app", d},
		{"ghcr.io/app:v1@" + d, "ghcr.io/app:v1@" + d, "ghcr.io/app", d},
		{"nginx@" + d, "docker.io/library/nginx@" + d, "docker.io/library/nginx", d},
	} {
		ref, err := ParseReference(tc.in)
		if err != nil {
			t.Errorf("ParseReference(%q): %v", tc.in, err)
			continue
		}
		if ref.String() != tc.want || ref.Repository() != tc.repo || ref.Object() != tc.object {
			t.Errorf("ParseReference(%q) = %s (repo %s, object %s), want %s (%s, %s)", tc.in, ref, ref.Repository(), ref.Object(), tc.want, tc.repo, tc.object)
		}
	}
	for _, tc := range []struct{ in, want string }{
		{"", "empty"},
		{" nginx", "white space"},
		{"ghcr.io/App:v1", "lowercase"},
		{"ghcr.io/app:", "malformed tag"},
		{"ghcr.io/app:-x", "malformed tag"},
		{"ghcr.io/app@sha256:abc", "malformed digest"},
		{"ghcr.io/app@sha512:" + strings.Repeat("a", 128), "only sha256"},
		{"ghcr.io/app@sha256:" + strings.Repeat("A", 64), "lowercase hex"},
		{"ghcr.io/a..b", "malformed repository"},
		{"ghcr.io//app", "malformed repository"},
		{"bad_host.io:x/app", "malformed"},
		{"ghcr.io/" + strings.Repeat("a", 250), "longer than"},
	} {
		_, err := ParseReference(tc.in)
		if !errors.Is(err, ErrInvalidReference) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseReference(%q) = %v, want ErrInvalidReference mentioning %q", tc.in, err, tc.want)
		}
	}
}
