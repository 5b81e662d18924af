package registry

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// Docker Hub, as image references name it.
const (
	dockerHubDomain   = "docker.io"
	legacyHubDomain   = "index.docker.io"
	officialRepoScope = "library/"
	defaultTag        = "latest"
	maxNameLength     = 255
)

// The grammar of image references, from the distribution project's
// reference package (reference/regexp.go), which the kubelet and containerd
// parse with too. Only the parts an image reference uses are kept.
var (
	alnum          = `[a-z0-9]+`
	separator      = `(?:[._]|__|[-]+)`
	pathComponent  = alnum + `(?:` + separator + alnum + `)*`
	domainLabel    = `(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])`
	domainName     = domainLabel + `(?:\.` + domainLabel + `)*`
	ipv6Address    = `\[(?:[a-fA-F0-9:]+)\]`
	domainAndPort  = `(?:` + domainName + `|` + ipv6Address + `)(?::[0-9]+)?`
	anchoredDomain = regexp.MustCompile(`^` + domainAndPort + `$`)
	anchoredPath   = regexp.MustCompile(`^` + pathComponent + `(?:/` + pathComponent + `)*$`)
	anchoredTag    = regexp.MustCompile(`^[\w][\w.-]{0,127}$`)
	anchoredDigest = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}$`)
)

// ErrInvalidReference is wrapped by every error of ParseReference.
var ErrInvalidReference = errors.New("invalid image reference")

// Reference is a parsed, normalised image reference.
type Reference struct {
	// Domain is the registry's host[:port], docker.io for Docker Hub.
	Domain string
	// Path is the repository path within the registry, e.g. library/nginx.
	Path string
	// Tag is the tag; "latest" when the reference names neither a tag nor
	// a digest. It may be set together with Digest (name:tag@digest), and
	// is then only informative: the digest is what is pulled.
	Tag string
	// Digest is "sha256:" and 64 hex digits, or empty.
	Digest string
}

// ParseReference parses an image reference as the kubelet does (through
// the distribution project's ParseNormalizedNamed): a name with no registry
// is on Docker Hub (docker.io), and a Docker Hub name of one component is
// in library/. A reference with neither tag nor digest means :latest.
// Only sha256 digests are accepted.
func ParseReference(s string) (Reference, error) {
	if s == "" {
		return Reference{}, fmt.Errorf("%w: empty", ErrInvalidReference)
	}
	if s != strings.TrimSpace(s) {
		return Reference{}, fmt.Errorf("%w %q: surrounding white space", ErrInvalidReference, s)
	}
	name, dgst, hasDigest := strings.Cut(s, "@")
	var ref Reference
	if hasDigest {
		if !anchoredDigest.MatchString(dgst) {
			return Reference{}, fmt.Errorf("%w %q: malformed digest %q", ErrInvalidReference, s, dgst)
		}
		algo, hexPart, _ := strings.Cut(dgst, ":")
		if algo != "sha256" {
			return Reference{}, fmt.Errorf("%w %q: unsupported digest algorithm %q (only sha256)", ErrInvalidReference, s, algo)
		}
		if len(hexPart) != sha256.Size*2 || strings.ToLower(hexPart) != hexPart {
			return Reference{}, fmt.Errorf("%w %q: a sha256 digest has 64 lowercase hex digits", ErrInvalidReference, s)
		}
		ref.Digest = dgst
	}
	// A tag follows the last colon after the last slash; a colon before it
	// is a port.
	if i := strings.LastIndexByte(name, ':'); i > strings.LastIndexByte(name, '/') {
		name, ref.Tag = name[:i], name[i+1:]
		if !anchoredTag.MatchString(ref.Tag) {
			return Reference{}, fmt.Errorf("%w %q: malformed tag %q", ErrInvalidReference, s, ref.Tag)
		}
	}
	ref.Domain, ref.Path = splitDomain(name)
	if !anchoredDomain.MatchString(ref.Domain) {
		return Reference{}, fmt.Errorf("%w %q: malformed registry host %q", ErrInvalidReference, s, ref.Domain)
	}
	if !anchoredPath.MatchString(ref.Path) {
		if strings.ToLower(ref.Path) != ref.Path {
			return Reference{}, fmt.Errorf("%w %q: repository name must be lowercase", ErrInvalidReference, s)
		}
		return Reference{}, fmt.Errorf("%w %q: malformed repository name %q", ErrInvalidReference, s, ref.Path)
	}
	if len(ref.Domain)+1+len(ref.Path) > maxNameLength {
		return Reference{}, fmt.Errorf("%w %q: name longer than %d characters", ErrInvalidReference, s, maxNameLength)
	}
	if ref.Tag == "" && ref.Digest == "" {
		ref.Tag = defaultTag
	}
	return ref, nil
}

// splitDomain splits a name into registry and path the way Docker does
// (distribution's splitDockerDomain): the first component is a registry
// only if it has a dot or a colon, is localhost, or has upper case.
func splitDomain(name string) (domain, path string) {
	i := strings.IndexByte(name, '/')
	if i == -1 || (!strings.ContainsAny(name[:i], ".:") && name[:i] != "localhost" && strings.ToLower(name[:i]) == name[:i]) {
		domain, path = dockerHubDomain, name
	} else {
		domain, path = name[:i], name[i+1:]
	}
	if domain == legacyHubDomain {
		domain = dockerHubDomain
	}
	if domain == dockerHubDomain && !strings.ContainsRune(path, '/') {
		path = officialRepoScope + path
	}
	return domain, path
}

// Repository is the fully qualified repository name, domain/path.
func (r Reference) Repository() string { return r.Domain + "/" + r.Path }

// String is the normalised reference: repository, :tag and @digest as set.
func (r Reference) String() string {
	s := r.Repository()
	if r.Tag != "" {
		s += ":" + r.Tag
	}
	if r.Digest != "" {
		s += "@" + r.Digest
	}
	return s
}

// Object is what is asked of the registry: the digest if there is one,
// the tag otherwise.
func (r Reference) Object() string {
	if r.Digest != "" {
		return r.Digest
	}
	return r.Tag
}

// TaggedName is repository:tag, or "" for a reference by digest.
func (r Reference) TaggedName() string {
	if r.Digest != "" || r.Tag == "" {
		return ""
	}
	return r.Repository() + ":" + r.Tag
}

// digestOf returns the sha256 digest of b.
func digestOf(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}
