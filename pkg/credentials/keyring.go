package credentials

import (
	"cmp"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"slices"
	"strings"

	"github.com/krustlet/krustlet-go/pkg/provider"
)

// Docker Hub, as image references and Docker config files name it.
const (
	dockerHubDomain = "docker.io"
	legacyHubDomain = "index.docker.io"
)

// dockerConfigEntry is one registry's entry in a Docker config file.
type dockerConfigEntry struct {
	Username      string `json:"username,omitempty"`
	Password      string `json:"password,omitempty"`
	Auth          string `json:"auth,omitempty"`
	Email         string `json:"email,omitempty"`
	IdentityToken string `json:"identitytoken,omitempty"`
	RegistryToken string `json:"registrytoken,omitempty"`
}

// ParseDockerConfigJSON reads a Docker config.json (the content of a
// kubernetes.io/dockerconfigjson Secret, or ~/.docker/config.json): its
// "auths" object. A file without "auths" is read as the older .dockercfg
// format, as the kubelet does for the node's own file. Entries come out
// sorted by registry key; credential helpers (credsStore, credHelpers) are
// ignored, as the kubelet ignores them.
func ParseDockerConfigJSON(data []byte) ([]provider.Credential, error) {
	var cfg struct {
		Auths map[string]dockerConfigEntry `json:"auths"`
	}
	if err := json.Unmarshal(data, &cfg); err != nil {
		return nil, fmt.Errorf("parsing docker config.json: %w", err)
	}
	if cfg.Auths == nil {
		var probe map[string]json.RawMessage
		if json.Unmarshal(data, &probe) == nil {
			if _, ok := probe["auths"]; !ok && len(probe) > 0 && !hasConfigOnlyKeys(probe) {
				return ParseDockerCfg(data)
			}
		}
	}
	return entriesToCredentials(cfg.Auths)
}

// hasConfigOnlyKeys tells a config.json that holds no "auths" (only
// settings such as credsStore) from a .dockercfg.
func hasConfigOnlyKeys(m map[string]json.RawMessage) bool {
	for _, k := range []string{"credsStore", "credHelpers", "psFormat", "imagesFormat", "detachKeys", "currentContext", "plugins", "proxies", "experimental"} {
		if _, ok := m[k]; ok {
			return true
		}
	}
	return false
}

// ParseDockerCfg reads the legacy .dockercfg format (the content of a
// kubernetes.io/dockercfg Secret): registry key → entry.
func ParseDockerCfg(data []byte) ([]provider.Credential, error) {
	var entries map[string]dockerConfigEntry
	if err := json.Unmarshal(data, &entries); err != nil {
		return nil, fmt.Errorf("parsing .dockercfg: %w", err)
	}
	return entriesToCredentials(entries)
}

func entriesToCredentials(entries map[string]dockerConfigEntry) ([]provider.Credential, error) {
	keys := make([]string, 0, len(entries))
	for k := range entries {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var (
		out  []provider.Credential
		errs []error
	)
	for _, k := range keys {
		e := entries[k]
		c := provider.Credential{Registry: k, Username: e.Username, Password: e.Password, IdentityToken: e.IdentityToken, RegistryToken: e.RegistryToken}
		if e.Auth != "" {
			raw, err := base64.StdEncoding.DecodeString(e.Auth)
			if err != nil {
				errs = append(errs, fmt.Errorf("registry %q: auth is not base64: %w", k, err))
				continue
			}
			user, pass, ok := strings.Cut(string(raw), ":")
			if !ok {
				errs = append(errs, fmt.Errorf("registry %q: auth is not user:password", k))
				continue
			}
			c.Username, c.Password = user, strings.Trim(pass, "\x00")
		}
		out = append(out, c)
	}
	return out, errors.Join(errs...)
}

// DockerConfigJSON renders credentials as a Docker config.json, the
// content of a kubernetes.io/dockerconfigjson Secret.
func DockerConfigJSON(creds ...provider.Credential) ([]byte, error) {
	auths := map[string]dockerConfigEntry{}
	for _, c := range creds {
		e := dockerConfigEntry{IdentityToken: c.IdentityToken, RegistryToken: c.RegistryToken}
		if c.Username != "" || c.Password != "" {
			e.Username, e.Password = c.Username, c.Password
			e.Auth = base64.StdEncoding.EncodeToString([]byte(c.Username + ":" + c.Password))
		}
		auths[c.Registry] = e
	}
	return json.Marshal(map[string]any{"auths": auths})
}

// keyringKey is the key a credential's registry is matched by, as the
// kubelet's credentialprovider.BasicDockerKeyring.Add computes it: the
// scheme is dropped, and a /v1/ or /v2/ path counts as none.
func keyringKey(registry string) (string, bool) {
	value := registry
	if !strings.HasPrefix(value, "https://") && !strings.HasPrefix(value, "http://") {
		value = "https://" + value
	}
	u, err := url.Parse(value)
	if err != nil || u.Host == "" {
		return "", false
	}
	path := u.Path
	if strings.HasPrefix(path, "/v2/") || strings.HasPrefix(path, "/v1/") {
		path = path[3:]
	}
	if path != "" && path != "/" {
		return u.Host + path, true
	}
	return u.Host, true
}

// Match returns the credentials of creds that apply to image, in the order
// to try them. image is a reference as a pod names it (nginx:1.27,
// ghcr.io/team/app@sha256:…) or a repository; it is reduced to its
// normalised repository, domain/path (docker.io/library/nginx), as the
// kubelet does before its keyring lookup. It is not validated: pulling
// refuses a malformed reference.
//
// It ports the kubelet's credentialprovider keyring (keyring.go, Lookup
// and URLsMatch): a key matches when its host has as many dot-separated
// parts as the repository's, each part matching as a glob (so
// *.example.com matches one.example.com but not example.com), the ports
// are equal, and the key's path is a prefix of the repository's path;
// schemes are ignored. More specific keys come first (the kubelet's
// reverse-sorted index). If no key matches a Docker Hub repository,
// credentials for index.docker.io apply.
//
// What changed: the kubelet keeps one keyring per source and tries the
// pod's secrets before the node's; here the sources arrive as one ordered
// list, so among equal keys the earlier credential comes first.
func Match(creds []provider.Credential, image string) []provider.Credential {
	repository := repositoryOf(image)
	type match struct {
		key string
		i   int
	}
	var matches []match
	var hub []int
	for i, c := range creds {
		key, ok := keyringKey(c.Registry)
		if !ok {
			continue
		}
		if key == legacyHubDomain {
			hub = append(hub, i)
		}
		if urlsMatch(key, repository) {
			matches = append(matches, match{key, i})
		}
	}
	slices.SortStableFunc(matches, func(a, b match) int { return -cmp.Compare(a.key, b.key) })
	var out []provider.Credential
	for _, m := range matches {
		out = append(out, creds[m.i])
	}
	if len(out) == 0 && isDefaultRegistryMatch(repository) {
		for _, i := range hub {
			out = append(out, creds[i])
		}
	}
	return out
}

// repositoryOf reduces an image reference to its repository as the
// kubelet's parsers.ParseImageName does (through the distribution
// project's ParseNormalizedNamed): the digest and the tag are dropped; the
// first component is a registry only if it has a dot or a colon, is
// localhost, or has upper case, and otherwise the name is on Docker Hub;
// index.docker.io is docker.io, and a Docker Hub name of one component is
// in library/. A repository comes back unchanged.
func repositoryOf(image string) string {
	name, _, _ := strings.Cut(image, "@")
	// A tag follows the last colon after the last slash; a colon before it
	// is a port.
	if i := strings.LastIndexByte(name, ':'); i > strings.LastIndexByte(name, '/') {
		name = name[:i]
	}
	if name == "" {
		return ""
	}
	domain, path := dockerHubDomain, name
	if i := strings.IndexByte(name, '/'); i != -1 && (strings.ContainsAny(name[:i], ".:") || name[:i] == "localhost" || strings.ToLower(name[:i]) != name[:i]) {
		domain, path = name[:i], name[i+1:]
	}
	if domain == legacyHubDomain {
		domain = dockerHubDomain
	}
	if domain == dockerHubDomain && !strings.ContainsRune(path, '/') {
		path = "library/" + path
	}
	return domain + "/" + path
}

// isDefaultRegistryMatch is the kubelet's: does image live on Docker Hub?
func isDefaultRegistryMatch(image string) bool {
	first, _, hasSlash := strings.Cut(image, "/")
	if first == "" {
		return false
	}
	if !hasSlash {
		return true
	}
	if first == dockerHubDomain || first == legacyHubDomain {
		return true
	}
	return !strings.ContainsAny(first, ".:")
}

// urlsMatch is the kubelet's URLsMatchStr for two scheme-less URLs.
func urlsMatch(glob, target string) bool {
	g, err := url.Parse("https://" + glob)
	if err != nil {
		return false
	}
	t, err := url.Parse("https://" + target)
	if err != nil {
		return false
	}
	gParts, gPort := splitURL(g)
	tParts, tPort := splitURL(t)
	if gPort != tPort || len(gParts) != len(tParts) {
		return false
	}
	for i := range gParts {
		if ok, err := filepath.Match(gParts[i], tParts[i]); err != nil || !ok {
			return false
		}
	}
	return strings.HasPrefix(t.Path, g.Path)
}

func splitURL(u *url.URL) ([]string, string) {
	host, port, err := net.SplitHostPort(u.Host)
	if err != nil {
		host, port = u.Host, ""
	}
	return strings.Split(host, "."), port
}
