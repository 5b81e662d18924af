// Package registry pulls WebAssembly modules from OCI registries for the
// node, keeps them in a content-addressed store, collects the ones no pod
// uses, and pushes modules (krustlet push). It is built on the image-spec
// types and oras-go v2; it knows nothing of the providers that run the
// modules (cmd/krustlet wires it in as the wasmtime provider's module
// source).
//
// # What it pulls
//
// Two Wasm artifact layouts, as an image manifest or as the wasip1/wasm
// (or wasi/wasm) entry of an image index:
//
//   - the CNCF TAG Runtime layout: config application/vnd.wasm.config.v0+json
//     with architecture wasm and os wasip1, one layer application/wasm
//     (also as an OCI 1.1 artifact with the empty config and that artifact
//     type, as `oras push --artifact-type` writes it);
//   - wasm-to-oci's, which krustlet pulled: config
//     application/vnd.wasm.config.v1+json, one layer
//     application/vnd.wasm.content.layer.v1+wasm.
//
// Anything else is refused with provider.ErrImageInspect and a message that
// says what it is and what is accepted: a container image (with its
// platform and layer types), a WASI preview 2 component (os wasip2), an
// index without a wasip1/wasm entry, another kind of artifact, a module
// over Options.MaxModuleSize (checked before it is downloaded).
//
// # References, pull policies, credentials
//
// References are parsed and normalised as the kubelet does (ParseReference:
// docker.io/library/ for Docker Hub short names, :latest by default,
// name:tag@digest pulls the digest). Pull policies are the kubelet's:
// IfNotPresent and Never use the stored image the reference names (Never
// fails with provider.ErrImageNeverPull when there is none); Always
// resolves the reference on the registry (one HEAD of the manifest) and
// downloads nothing when the digest is stored already. The image ID is
// repository@digest, the digest the reference resolved to.
//
// Credentials come from the core in provider.PullRequest.Credentials
// (pkg/credentials assembles them); credentials.Match picks those for the
// repository, as the kubelet's credential keyring does. Failures wrap
// provider.ErrImagePull and say what the registry answered (401 with or
// without matching credentials, 404, digest mismatch, timeout).
// Registries in Options.InsecureRegistries are reached over plain HTTP;
// Options.CAFile replaces the system roots. oras-go refuses bearer-token
// realms on loopback and link-local addresses unless the realm is on the
// registry's own host; this package keeps that default.
//
// # The store and garbage collection
//
// Store keeps every blob under its digest, written to a temporary file and
// renamed only once its size and digest checked out, so a tampered or
// truncated download leaves nothing behind; images.json records which
// blobs make each image, its tags and its last use. Concurrent pulls of one
// reference (with the same credentials) share one download, and so do
// concurrent downloads of one blob. Store.Images gives the Node's
// status.images. ImageGC removes unused images, least recently used first,
// when the file system passes the high threshold, as the kubelet's image
// garbage collector does.
//
// Use:
//
//	reg, err := registry.New(registry.Options{Dir: "/var/lib/krustlet/images", InsecureRegistries: []string{"127.0.0.1:5000"}})
//	img, mod, err := reg.Pull(ctx, provider.PullRequest{Image: "127.0.0.1:5000/app:v1", Policy: v1.PullIfNotPresent})
//	// mod.Path holds the module, mod.Digest is its digest, img.ID is 127.0.0.1:5000/app@sha256:…
//	gc := &registry.ImageGC{Store: reg.Store(), InUse: imagesOfPods, OnRemove: forgetCompiled}
//	go gc.Run(ctx)
package registry
