// Package images builds the Linux container images of the tests from the Go
// programs under test/ctr and pushes them to a registry on loopback: pause
// (the sandbox image of the tests' containerd) and ctrtest (the general test
// program, the container counterpart of test/wasm/testmod).
//
// A program test/ctr/NAME (a main package of this repository that uses the
// standard library only) is built with CGO_ENABLED=0 GOOS=linux GOARCH=amd64
// -trimpath into a single-layer linux/amd64 OCI image: an image manifest, a
// config with Entrypoint /bin/NAME (and for ctrtest a Cmd, an Env and a
// WorkingDir), and one gzipped tar layer holding /bin/NAME, /etc/passwd and
// /etc/group with root and nobody, and /tmp. The blobs are cached under
// CacheDir()/ctr, keyed by the content of the program's sources, the Go
// version and the image layout, so only the first run after a change builds;
// later runs push the cached blobs. Concurrent callers, in one process or
// many, share one build through a file lock.
//
//	ref, err := images.Push(ctx, reg.Host, images.CtrTest) // "127.0.0.1:PORT/ctrtest:<content hash>"
package images
