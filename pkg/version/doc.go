// Package version reports the version of this krustlet build.
//
// The values are stamped at link time by the Makefile:
//
//	go build -ldflags "-X github.com/krustlet/krustlet-go/pkg/version.gitVersion=v0.1.0 ..."
//
// A build without stamping (for example `go run`) reports the module version
// recorded by the Go toolchain, or "v0.0.0-dev".
package version
