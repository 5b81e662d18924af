// Package containerd runs a real containerd (Debian's 1.6, CRI v1 built in)
// as a child process of a test, for the tests of the CRI provider: pods are
// ordinary Linux containers run by runc, with IPs from a bridge network of
// their own.
//
// Start writes a version 2 configuration under Options.Dir that keeps the
// instance apart from the machine's own containerd and from other instances:
// root, state, the CRI socket, runc's state and the network namespaces
// are under Dir; the sandbox image is the pause image in the test's registry
// on loopback, which is configured as plain HTTP; runc is the default
// runtime, overlayfs the snapshotter, and restrict_oom_score_adj is on (this
// kind of machine refuses a negative oom_score_adj). The CNI configuration is
// a bridge (gateway, no masquerading, no default route in the pods) with
// host-local addresses on a /24 of 10.199.0.0/16 and its own bridge name,
// both claimed through a lock file so that instances in parallel tests never
// clash, plus loopback. Start returns once the CRI answers Version and
// reports RuntimeReady and NetworkReady.
//
// Stop removes every sandbox through the CRI, stops the process by PID, and
// then removes by hand whatever is still there (shims of this instance and
// their containers, mounts under Dir, the pods' cgroups, the bridge); it
// fails if anything is left. Restart and Kill serve the tests of a runtime
// that restarts or vanishes.
//
// Nothing is installed here: `make deps` (and .ci/run) install Debian's
// containerd, runc and containernetworking-plugins. When they are missing or
// the test is not root, Start returns an error wrapping ErrUnavailable and
// MustStart skips, unless KRUSTLET_REQUIRE_CRI is set (CI sets it); when
// they are there but containerd does not come up, Start fails.
//
//	reg, _ := registry.Start(ctx, registry.Options{Dir: t.TempDir()})
//	ctr := containerd.MustStart(t, containerd.Options{Dir: t.TempDir(), RegistryHost: reg.Host})
//	ref := images.MustPush(t, reg.Host, images.CtrTest)
//	rs := ctr.RuntimeService() // or dial ctr.Endpoint()
package containerd
