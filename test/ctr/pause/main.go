// Command pause is the sandbox process of the pod sandboxes that the tests'
// containerd runs (its sandbox_image), in the manner of Kubernetes' pause:
// it holds the sandbox's namespaces, sleeps until SIGTERM or SIGINT, then
// exits 0, and reaps the children it inherits when it is the sandbox's PID 1.
//
// It is built statically (CGO_ENABLED=0) into a one-layer image by
// test/framework/images.
package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "-v" {
		fmt.Println("pause (krustlet-go test image)")
		return
	}
	if os.Getpid() != 1 {
		fmt.Fprintln(os.Stderr, "Warning: pause should be the first process")
	}
	sigs := make(chan os.Signal, 16)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGCHLD)
	for s := range sigs {
		if s == syscall.SIGCHLD {
			reap()
			continue
		}
		fmt.Fprintf(os.Stderr, "Shutting down, got signal: %v\n", s)
		os.Exit(0)
	}
}

// reap waits for every child that has exited; several exits may arrive as
// one SIGCHLD.
func reap() {
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
		if err == syscall.EINTR {
			continue
		}
		if pid <= 0 || err != nil {
			return
		}
	}
}
