package containerd

import (
	"fmt"
	"strconv"
	"strings"
)

// configParams fill the containerd configuration.
type configParams struct {
	Root, State, Socket, Opt string
	PauseImage               string
	RegistryConfigDir        string
	CNIBinDir, CNIConfDir    string
	Runc                     string
	RuncRoot                 string
	// Handlers are the CRI runtime handlers, each running runc; the first
	// is the default.
	Handlers []string
}

// configTOML renders a version 2 configuration for containerd 1.6 that
// keeps everything of the instance under its directory: root, state, the
// socket, runc's state, the network namespaces and the CNI configuration.
//
// restrict_oom_score_adj is required where the kernel refuses a negative
// oom_score_adj (every sandbox fails otherwise, with "can't get final
// child's PID from pipe: EOF" from runc). Registries are configured in
// RegistryConfigDir (see hostsTOML), as containerd 1.6 prefers to the
// deprecated mirrors table.
func configTOML(p configParams) string {
	q := strconv.Quote
	var b strings.Builder
	fmt.Fprintf(&b, `version = 2
root = %s
state = %s
disabled_plugins = [
  "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.zfs",
  "io.containerd.tracing.processor.v1.otlp",
  "io.containerd.internal.v1.tracing",
]

[grpc]
  address = %s

[debug]
  level = "info"

[plugins]
  [plugins."io.containerd.internal.v1.opt"]
    path = %s

  [plugins."io.containerd.grpc.v1.cri"]
    sandbox_image = %s
    restrict_oom_score_adj = true
    netns_mounts_under_state_dir = true
    stream_server_address = "127.0.0.1"
    stream_server_port = "0"
    enable_selinux = false

    [plugins."io.containerd.grpc.v1.cri".containerd]
      snapshotter = "overlayfs"
      default_runtime_name = %s
`, q(p.Root), q(p.State), q(p.Socket), q(p.Opt), q(p.PauseImage), q(p.Handlers[0]))
	for _, h := range p.Handlers {
		fmt.Fprintf(&b, `
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.%s]
        runtime_type = "io.containerd.runc.v2"
        [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.%s.options]
          BinaryName = %s
          Root = %s
          SystemdCgroup = false
`, q(h), q(h), q(p.Runc), q(p.RuncRoot))
	}
	fmt.Fprintf(&b, `
    [plugins."io.containerd.grpc.v1.cri".cni]
      bin_dir = %s
      conf_dir = %s
      max_conf_num = 1

    [plugins."io.containerd.grpc.v1.cri".registry]
      config_path = %s
`, q(p.CNIBinDir), q(p.CNIConfDir), q(p.RegistryConfigDir))
	return b.String()
}

// hostsTOML is the hosts.toml of a registry reached over plain HTTP, to be
// written to RegistryConfigDir/HOST:PORT/hosts.toml.
func hostsTOML(host string) string {
	url := strconv.Quote("http://" + host)
	return fmt.Sprintf("server = %s\n\n[host.%s]\n  capabilities = [\"pull\", \"resolve\", \"push\"]\n", url, url)
}
