package wasmtime_test

import (
	"bytes"
	"context"
	"fmt"
	"log"
	"os"
	"time"

	v1 "k8s.io/api/core/v1"

	"github.com/krustlet/krustlet-go/pkg/provider"
	"github.com/krustlet/krustlet-go/pkg/wasmtime"
	"github.com/krustlet/krustlet-go/test/framework/wasmbuild"
)

// The core's use of the provider: pull an image, start a run from a
// prepared config, wait for it.
func Example() {
	ctx := context.Background()
	module, err := wasmbuild.Build(ctx, "testmod") // a WASI module built from test/wasm/testmod
	if err != nil {
		log.Fatal(err)
	}
	dataDir, err := os.MkdirTemp("", "krustlet-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dataDir)

	p, err := wasmtime.New(wasmtime.Options{DataDir: dataDir, AllowLocalModules: true})
	if err != nil {
		log.Fatal(err)
	}
	defer p.Close()

	img, err := p.PullImage(ctx, provider.PullRequest{Image: "fs/" + module, Policy: v1.PullIfNotPresent})
	if err != nil {
		log.Fatal(err)
	}
	var stdout bytes.Buffer
	c, err := p.StartContainer(ctx, provider.ContainerConfig{
		ID:     "pod-uid_hello_0",
		Name:   "hello",
		Image:  img,
		Args:   []string{"hello", "echo", "Hello from WebAssembly", "env", "GREETING", "exit", "3"},
		Env:    []provider.EnvVar{{Name: "GREETING", Value: "hi"}},
		Stdout: &stdout,
	})
	if err != nil {
		log.Fatal(err)
	}
	status, err := c.Wait(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Print(stdout.String()) // complete once Wait returned
	fmt.Println("exit code:", status.ExitCode)

	// A module sleeping for an hour is stopped once the grace period has
	// passed: a WebAssembly guest cannot be asked to stop.
	c, err = p.StartContainer(ctx, provider.ContainerConfig{
		ID: "pod-uid_sleeper_0", Name: "sleeper", Image: img,
		Args: []string{"sleeper", "sleep", "1h"},
	})
	if err != nil {
		log.Fatal(err)
	}
	if err := c.Stop(ctx, 100*time.Millisecond); err != nil {
		log.Fatal(err)
	}
	status, _ = c.Wait(ctx)
	fmt.Println(status.ExitCode, status.Reason, status.Message)
	// Output:
	// Hello from WebAssembly
	// hi
	// exit code: 3
	// 137 Error stopped by the node after the grace period of 100ms
}
