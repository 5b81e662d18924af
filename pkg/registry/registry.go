package registry

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/singleflight"
	v1 "k8s.io/api/core/v1"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/errdef"
	orasregistry "oras.land/oras-go/v2/registry"
	"oras.land/oras-go/v2/registry/remote"
	"oras.land/oras-go/v2/registry/remote/auth"
	"oras.land/oras-go/v2/registry/remote/errcode"
	"oras.land/oras-go/v2/registry/remote/retry"

	"github.com/krustlet/krustlet-go/pkg/credentials"
	"github.com/krustlet/krustlet-go/pkg/provider"
)

// Defaults of Options.
const (
	DefaultPullTimeout   = 5 * time.Minute
	DefaultMaxModuleSize = 256 << 20
	// maxManifestSize and maxConfigSize bound the small blobs read into
	// memory.
	maxManifestSize = 4 << 20
	maxConfigSize   = 4 << 20
)

// Options configure a Registry. Dir is required; the zero value of every
// other field has a default.
type Options struct {
	// Dir holds the content store (see Store). It is created if missing.
	Dir string
	// InsecureRegistries are reached over plain HTTP: host:port entries
	// match exactly, host entries match the host on any port. Default:
	// none.
	InsecureRegistries []string
	// CAFile is a PEM bundle trusted for registries instead of the system
	// roots. Default: the system roots.
	CAFile string
	// PullTimeout bounds one pull, from resolving the reference to the
	// module's last byte. Default: 5 minutes.
	PullTimeout time.Duration
	// MaxModuleSize refuses modules larger than this many bytes before
	// they are downloaded. Default: 256 MiB.
	MaxModuleSize int64
	// UserAgent is sent with every request. Default: krustlet.
	UserAgent string
	// Transport carries requests; it is wrapped with oras-go's retry
	// transport (5xx and 429 answers are retried with back-off). Default:
	// a clone of http.DefaultTransport with CAFile's roots.
	Transport http.RoundTripper
	// Clock stamps image use for garbage collection. Default: real.
	Clock clock.Clock
	// Logger is used for work not tied to a caller's context. Default:
	// klog.Background().
	Logger klog.Logger
}

// Validate checks the options and fills in defaults.
func (o *Options) Validate() error {
	if o.Dir == "" {
		return errors.New("registry: Dir is required")
	}
	switch {
	case o.PullTimeout == 0:
		o.PullTimeout = DefaultPullTimeout
	case o.PullTimeout < 0:
		return fmt.Errorf("registry: PullTimeout %v is negative", o.PullTimeout)
	}
	switch {
	case o.MaxModuleSize == 0:
		o.MaxModuleSize = DefaultMaxModuleSize
	case o.MaxModuleSize < 0:
		return fmt.Errorf("registry: MaxModuleSize %d is negative", o.MaxModuleSize)
	}
	if o.UserAgent == "" {
		o.UserAgent = "krustlet"
	}
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	if o.Logger.GetSink() == nil {
		o.Logger = klog.Background()
	}
	insecure := make([]string, 0, len(o.InsecureRegistries))
	for _, h := range o.InsecureRegistries {
		h = strings.TrimSuffix(strings.TrimPrefix(strings.TrimPrefix(h, "http://"), "https://"), "/")
		if h == "" {
			return fmt.Errorf("registry: empty insecure registry entry")
		}
		insecure = append(insecure, h)
	}
	o.InsecureRegistries = insecure
	return nil
}

// Registry pulls Wasm modules from OCI registries into its Store. It is
// safe for concurrent use.
type Registry struct {
	opts   Options
	log    klog.Logger
	store  *Store
	client *http.Client
	// pulls collapses concurrent pulls of one reference with the same
	// credentials; blobs collapses concurrent downloads of one blob.
	pulls singleflight.Group
	blobs singleflight.Group
}

// Module locates the module of a pulled image in the store.
type Module struct {
	// Digest is the module's digest, sha256:HEX.
	Digest string
	// Path is the file that holds exactly the module. It is read-only.
	Path string
	// Size is the module's size in bytes.
	Size int64
}

// New opens the store in opts.Dir and builds the HTTP client.
func New(opts Options) (*Registry, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	logger := opts.Logger.WithName("registry")
	store, err := OpenStore(opts.Dir, opts.Clock)
	if store == nil {
		return nil, fmt.Errorf("registry: %w", err)
	}
	if err != nil {
		logger.Error(err, "Image index unreadable")
	}
	transport := opts.Transport
	if transport == nil {
		if transport, err = NewTransport(opts.CAFile); err != nil {
			return nil, fmt.Errorf("registry: %w", err)
		}
	}
	return &Registry{
		opts:   opts,
		log:    logger,
		store:  store,
		client: &http.Client{Transport: retry.NewTransport(transport)},
	}, nil
}

// NewTransport returns an HTTP transport for registries: a clone of
// http.DefaultTransport (proxy settings from the environment) that trusts
// the PEM bundle caFile instead of the system roots, if caFile is set.
func NewTransport(caFile string) (*http.Transport, error) {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	t.ResponseHeaderTimeout = time.Minute
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("reading registry CA file: %w", err)
		}
		// Added to the system roots, so public registries stay reachable
		// next to a private one.
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("registry CA file %s holds no PEM certificate", caFile)
		}
		t.TLSClientConfig.RootCAs = pool
	}
	return t, nil
}

// Store is the registry's content store.
func (r *Registry) Store() *Store { return r.store }

// Images lists the stored images for the Node's status (see
// Store.Images).
func (r *Registry) Images() []v1.ContainerImage { return r.store.Images() }

// Pull makes the module of req.Image available in the store, following
// req.Policy as the kubelet does:
//
//   - IfNotPresent (and Never) use the stored image the reference names, by
//     tag or by digest; Never fails with provider.ErrImageNeverPull when
//     there is none.
//   - Always asks the registry what the reference resolves to (a HEAD of
//     the manifest, which also proves the credentials still grant access)
//     and downloads nothing when that digest is stored already.
//
// req.Credentials that match the image's repository are tried in order
// (see credentials.Match); with none, the pull is anonymous. Concurrent
// pulls of one reference with the same credentials share one download.
// Errors wrap provider.ErrImagePull (with what the registry answered),
// provider.ErrImageInspect (the reference is invalid, or names something
// other than a WASI preview 1 module) or provider.ErrImageNeverPull.
// The image's ID is repository@digest, the digest of what the reference
// resolved to (an index's, for an image index).
func (r *Registry) Pull(ctx context.Context, req provider.PullRequest) (provider.Image, Module, error) {
	ref, err := ParseReference(req.Image)
	if err != nil {
		return provider.Image{}, Module{}, fmt.Errorf("%w: %w", provider.ErrImageInspect, err)
	}
	if req.Policy != v1.PullAlways {
		if rec, ok := r.store.lookup(ref); ok {
			return r.result(ref, rec, true)
		}
		if req.Policy == v1.PullNever {
			return provider.Image{}, Module{}, fmt.Errorf("%w: %s is not on this node", provider.ErrImageNeverPull, ref)
		}
	}
	creds := credentials.Match(req.Credentials, ref.Repository())
	key := ref.String() + "\x00" + credentialsKey(creds)
	ch := r.pulls.DoChan(key, func() (any, error) {
		// The pull outlives a caller that gives up, so that a retry finds
		// it done; it is bounded by the pull timeout only.
		pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.opts.PullTimeout)
		defer cancel()
		return r.pull(pctx, ref, creds)
	})
	select {
	case res := <-ch:
		if res.Err != nil {
			return provider.Image{}, Module{}, res.Err
		}
		p := res.Val.(pulled)
		return r.result(ref, p.rec, p.present)
	case <-ctx.Done():
		return provider.Image{}, Module{}, fmt.Errorf("%w: pulling %s: %w", provider.ErrImagePull, ref, ctx.Err())
	}
}

func (r *Registry) result(ref Reference, rec *imageRecord, present bool) (provider.Image, Module, error) {
	img := provider.Image{
		Ref:            ref.String(),
		ID:             ref.Repository() + "@" + rec.Digest,
		Size:           rec.size(),
		AlreadyPresent: present,
	}
	return img, Module{Digest: rec.Module, Path: r.store.BlobPath(rec.Module), Size: rec.ModuleSize}, nil
}

// credentialsKey tells apart pulls made with different credentials, so
// that a pull without access never shares the result of one with access.
func credentialsKey(creds []provider.Credential) string {
	if len(creds) == 0 {
		return "anonymous"
	}
	h := sha256.New()
	for _, c := range creds {
		fmt.Fprintf(h, "%q %q %q %q %q\n", c.Registry, c.Username, c.Password, c.IdentityToken, c.RegistryToken)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// pulled is the result of one pull.
type pulled struct {
	rec *imageRecord
	// present is set when nothing had to be downloaded.
	present bool
}

// pull resolves ref with each candidate credential in turn until one is
// not refused, then fetches what is missing.
func (r *Registry) pull(ctx context.Context, ref Reference, creds []provider.Credential) (pulled, error) {
	logger := klog.FromContext(ctx).WithValues("image", ref.String())
	candidates := creds
	if len(candidates) == 0 {
		candidates = []provider.Credential{{}}
	}
	var lastErr error
	for i, c := range candidates {
		repo := r.repository(ref, c)
		desc, err := repo.Resolve(ctx, ref.Object())
		if err != nil {
			lastErr = err
			if isAuthError(err) && i+1 < len(candidates) {
				logger.V(2).Info("Registry refused a credential; trying the next", "registry", c.Registry, "err", err)
				continue
			}
			break
		}
		if ref.Digest != "" && desc.Digest.String() != ref.Digest {
			return pulled{}, r.pullError(ref, creds, fmt.Errorf("registry resolved digest %s to %s", ref.Digest, desc.Digest))
		}
		p, err := r.fetch(ctx, repo, ref, desc)
		if err != nil {
			if errors.Is(err, provider.ErrImageInspect) {
				return pulled{}, err
			}
			return pulled{}, r.pullError(ref, creds, err)
		}
		return p, nil
	}
	return pulled{}, r.pullError(ref, creds, lastErr)
}

// repository is a client for ref's repository with one credential.
func (r *Registry) repository(ref Reference, c provider.Credential) *remote.Repository {
	oref := orasregistry.Reference{Registry: ref.Domain, Repository: ref.Path}
	host := oref.Host()
	cred := auth.Credential{Username: c.Username, Password: c.Password, RefreshToken: c.IdentityToken, AccessToken: c.RegistryToken}
	header := http.Header{}
	header.Set("User-Agent", r.opts.UserAgent)
	return &remote.Repository{
		Reference: oref,
		PlainHTTP: r.plainHTTP(ref.Domain),
		Client: &auth.Client{
			Client: r.client,
			Header: header,
			// One cache per pull: tokens are for this credential only.
			Cache: auth.NewCache(),
			Credential: func(_ context.Context, hostport string) (auth.Credential, error) {
				if hostport == host {
					return cred, nil
				}
				return auth.EmptyCredential, nil
			},
		},
		ManifestMediaTypes: manifestMediaTypes,
	}
}

// plainHTTP reports whether domain is one of the insecure registries.
func (r *Registry) plainHTTP(domain string) bool {
	host, _, err := net.SplitHostPort(domain)
	if err != nil {
		host = domain
	}
	for _, h := range r.opts.InsecureRegistries {
		if h == domain || h == host || strings.Trim(h, "[]") == host {
			return true
		}
	}
	return false
}

// fetch stores what is missing of the image desc resolved to.
func (r *Registry) fetch(ctx context.Context, repo *remote.Repository, ref Reference, desc ocispec.Descriptor) (pulled, error) {
	if rec, ok, err := r.store.existing(ref, desc.Digest.String()); ok {
		if err != nil {
			return pulled{}, err
		}
		return pulled{rec: rec, present: true}, nil
	}
	defer r.store.pin(desc.Digest.String())()
	body, err := r.fetchSmall(ctx, repo, desc, maxManifestSize, "manifest")
	if err != nil {
		return pulled{}, err
	}
	isIndex, err := manifestKind(desc.MediaType, body)
	if err != nil {
		return pulled{}, fmt.Errorf("%w: %s: %w", provider.ErrImageInspect, ref, err)
	}
	small := []smallBlob{{desc, body}}
	manifestDesc, manifestBody := desc, body
	if isIndex {
		var index ocispec.Index
		if err := json.Unmarshal(body, &index); err != nil {
			return pulled{}, fmt.Errorf("%w: %s: image index is not valid: %w", provider.ErrImageInspect, ref, err)
		}
		if manifestDesc, err = selectPlatform(ref.String(), index); err != nil {
			return pulled{}, err
		}
		defer r.store.pin(manifestDesc.Digest.String())()
		if manifestBody, err = r.fetchSmall(ctx, repo, manifestDesc, maxManifestSize, "manifest"); err != nil {
			return pulled{}, err
		}
		if nested, err := manifestKind(manifestDesc.MediaType, manifestBody); err != nil || nested {
			return pulled{}, fmt.Errorf("%w: %s: the %s/%s entry of the image index is not an image manifest", provider.ErrImageInspect, ref, WasmOSPreview1, WasmArchitecture)
		}
		small = append(small, smallBlob{manifestDesc, manifestBody})
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(manifestBody, &m); err != nil {
		return pulled{}, fmt.Errorf("%w: %s: manifest is not valid: %w", provider.ErrImageInspect, ref, err)
	}
	layer, checkConfig, containerImage, err := moduleLayer(ref.String(), m)
	if err != nil {
		return pulled{}, err
	}
	if containerImage || checkConfig || m.Config.MediaType == MediaTypeWasmConfigV1 {
		defer r.store.pin(m.Config.Digest.String())()
		cfg, err := r.fetchSmall(ctx, repo, m.Config, maxConfigSize, "config")
		if err != nil {
			return pulled{}, err
		}
		if containerImage {
			return pulled{}, containerImageError(ref.String(), m, cfg)
		}
		if checkConfig {
			if err := checkWasmConfig(ref.String(), cfg); err != nil {
				return pulled{}, err
			}
		}
		small = append(small, smallBlob{m.Config, cfg})
	}
	if layer.Size > r.opts.MaxModuleSize {
		return pulled{}, fmt.Errorf("%w: %s: module is %d bytes, more than this node's limit of %d", provider.ErrImageInspect, ref, layer.Size, r.opts.MaxModuleSize)
	}
	if layer.Size <= 0 {
		return pulled{}, fmt.Errorf("%w: %s: module layer has size %d", provider.ErrImageInspect, ref, layer.Size)
	}
	defer r.store.pin(layer.Digest.String())()
	if err := r.fetchBlob(ctx, repo, layer); err != nil {
		return pulled{}, err
	}
	rec := imageRecord{Digest: desc.Digest.String(), Module: layer.Digest.String(), ModuleSize: layer.Size}
	for _, b := range small {
		if err := r.store.Ingest(b.desc, strings.NewReader(string(b.body))); err != nil {
			return pulled{}, fmt.Errorf("storing %s: %w", b.desc.Digest, err)
		}
		rec.Blobs = append(rec.Blobs, blobRef{Digest: b.desc.Digest.String(), Size: b.desc.Size, MediaType: b.desc.MediaType})
	}
	rec.Blobs = append(rec.Blobs, blobRef{Digest: layer.Digest.String(), Size: layer.Size, MediaType: layer.MediaType})
	stored, err := r.store.record(ref, rec)
	if err != nil {
		return pulled{}, err
	}
	klog.FromContext(ctx).V(2).Info("Pulled module", "image", ref.String(), "digest", rec.Digest, "module", rec.Module, "size", layer.Size)
	return pulled{rec: stored}, nil
}

type smallBlob struct {
	desc ocispec.Descriptor
	body []byte
}

// fetchSmall reads a manifest or config into memory, checked against its
// size and digest.
func (r *Registry) fetchSmall(ctx context.Context, repo *remote.Repository, desc ocispec.Descriptor, limit int64, what string) ([]byte, error) {
	if desc.Size > limit {
		return nil, fmt.Errorf("%w: %s %s is %d bytes, more than the %d accepted", provider.ErrImageInspect, what, desc.Digest, desc.Size, limit)
	}
	if r.store.HasBlob(desc.Digest.String()) {
		if b, err := r.store.ReadBlob(desc); err == nil {
			return b, nil
		}
	}
	rc, err := repo.Fetch(ctx, desc)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b, err := content.ReadAll(rc, desc)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", what, desc.Digest, err)
	}
	return b, nil
}

// fetchBlob downloads a blob into the store unless it is there already;
// concurrent downloads of one blob share one.
func (r *Registry) fetchBlob(ctx context.Context, repo *remote.Repository, desc ocispec.Descriptor) error {
	d := desc.Digest.String()
	if r.store.HasBlob(d) {
		return nil
	}
	_, err, _ := r.blobs.Do(d, func() (any, error) {
		if r.store.HasBlob(d) {
			return nil, nil
		}
		rc, err := repo.Fetch(ctx, desc)
		if err != nil {
			return nil, err
		}
		defer rc.Close()
		if err := r.store.Ingest(desc, rc); err != nil {
			return nil, fmt.Errorf("module %s: %w", d, err)
		}
		return nil, nil
	})
	return err
}

// isAuthError reports whether the registry refused a credential.
func isAuthError(err error) bool {
	var er *errcode.ErrorResponse
	if errors.As(err, &er) {
		return er.StatusCode == http.StatusUnauthorized || er.StatusCode == http.StatusForbidden
	}
	return errors.Is(err, auth.ErrBasicCredentialNotFound)
}

// pullError wraps err in provider.ErrImagePull with what the registry
// answered, in words.
func (r *Registry) pullError(ref Reference, creds []provider.Credential, err error) error {
	return fmt.Errorf("%w: pulling %s: %s", provider.ErrImagePull, ref, r.describe(ref, creds, err))
}

func (r *Registry) describe(ref Reference, creds []provider.Credential, err error) string {
	var er *errcode.ErrorResponse
	switch {
	case errors.As(err, &er):
		msg := fmt.Sprintf("registry answered %d %s to %s %s", er.StatusCode, http.StatusText(er.StatusCode), er.Method, er.URL.Redacted())
		if len(er.Errors) > 0 {
			msg += ": " + er.Errors.Error()
		}
		if er.StatusCode == http.StatusUnauthorized || er.StatusCode == http.StatusForbidden {
			if len(creds) == 0 {
				msg += fmt.Sprintf(" (no image pull secret or node credential matches %s)", ref.Repository())
			} else {
				msg += fmt.Sprintf(" (with the credentials for %s)", credentialRegistries(creds))
			}
		}
		return msg
	case errors.Is(err, auth.ErrBasicCredentialNotFound):
		return fmt.Sprintf("registry answered 401 Unauthorized: it asks for a user name and password, and no image pull secret or node credential matches %s", ref.Repository())
	case errors.Is(err, errdef.ErrNotFound):
		return fmt.Sprintf("registry answered 404 Not Found: %v", err)
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Sprintf("timed out after %v (the node's pull timeout): %v", r.opts.PullTimeout, err)
	case errors.Is(err, content.ErrMismatchedDigest):
		return fmt.Sprintf("content does not match its digest, refused (a registry or proxy served other bytes): %v", err)
	case errors.Is(err, content.ErrTrailingData), errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Sprintf("content does not have the size its descriptor says, refused: %v", err)
	case err != nil && strings.Contains(err.Error(), "server gave HTTP response to HTTPS client"):
		return fmt.Sprintf("%v (is %s a plain-HTTP registry? list it in --insecure-registries)", err, ref.Domain)
	default:
		return fmt.Sprint(err)
	}
}

func credentialRegistries(creds []provider.Credential) string {
	var keys []string
	for _, c := range creds {
		keys = append(keys, c.Registry)
	}
	return strings.Join(keys, ", ")
}

// blobDescriptor is a descriptor of b with mediaType.
func blobDescriptor(mediaType string, b []byte) ocispec.Descriptor {
	return ocispec.Descriptor{MediaType: mediaType, Digest: digest.FromBytes(b), Size: int64(len(b))}
}
