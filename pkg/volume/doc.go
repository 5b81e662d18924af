// Package volume materialises the volumes of a pod on the host, under the
// pod's directory, for the core to hand to a provider as mounts. Manager
// implements the core's VolumeManager (SetUp, TearDown); pkg/env uses its
// SubPath, ObjectCache and downward API helpers.
//
// # Volumes
//
// Each pod-local volume is podDir/volumes/<name>:
//
//   - configMap, secret, downwardAPI (fieldRef, resourceFieldRef) and
//     projected (configMap, secret, downwardAPI, serviceAccountToken,
//     clusterTrustBundle) volumes are written by an atomic writer, with
//     items, defaultMode and mode, and optional as Kubernetes specifies: a
//     missing optional object gives an empty volume, a missing optional
//     key is skipped, a missing required one is an error wrapping
//     ErrSourceMissing (a *MissingError). They are always mounted
//     read-only (ForcedReadOnly).
//   - secret, downwardAPI and projected volumes, and emptyDir with medium
//     Memory, are memory-backed as in the kubelet: a tmpfs (nosuid, nodev,
//     mode 0700) when the agent runs as root and mount(2) works, otherwise
//     a plain directory of mode 0700 (TmpfsPolicy). Without tmpfs their
//     content is on the data dir's disk and an emptyDir's sizeLimit is
//     only enforced through SizeLimitViolations. Disk-backed volumes are
//     directories of mode 0750. Either way no volume is readable by other
//     users of the host: modules run inside the agent.
//   - emptyDir: a directory (or tmpfs, above). SizeLimitViolations (and
//     EmptyDirUsage) measure usage like du so the core can evict pods
//     over their sizeLimit, as the kubelet's eviction manager does.
//   - hostPath: the host path itself, after the type check (Directory,
//     DirectoryOrCreate, File, FileOrCreate, Socket, CharDevice,
//     BlockDevice or none).
//
// Other types (persistentVolumeClaim, csi, ephemeral, image…) fail with
// ErrUnsupported.
//
// # Live updates
//
// SetUp is idempotent; the core calls it again every 10–60 s while a pod
// runs. ConfigMaps and Secrets are read through an ObjectCache (GET by
// name, reused for a TTL, 10 s by default; the first SetUp of a pod reads
// fresh), so a change reaches the files within one period plus the TTL.
// The atomic writer (a port of the kubelet's AtomicWriter) writes a new
// ..2026_01_02_15_04_05.NNN directory, swaps the relative ..data symlink
// with one rename and keeps relative per-file symlinks key -> ..data/key,
// so readers never see half an update and nothing changes on disk when
// the content did not. Service account tokens come from the TokenRequest
// API, bound to the pod, and are renewed by the first SetUp at or after 80 %
// of their lifetime (less a jitter of up to 10 s) or 24 h, as the
// kubelet's token manager does; NextTokenRefresh says when that is, for a
// core that wants to call SetUp right then rather than wait for its period. subPath mounts of these volumes are copies made at
// the first mount (see SubPath) and, as in the kubelet, not updated.
//
// # Safety
//
// Item paths, subPath and subPathExpr results that are absolute or contain
// ".." are refused; volume names must be DNS labels; subPaths that resolve
// through a symlink out of their volume are refused. Nothing is written
// outside podDir except what a hostPath volume of type DirectoryOrCreate
// or FileOrCreate asks for. After each write a volume is checked to
// contain only relative symlinks that resolve inside it. TearDown
// unmounts before it removes, and never follows symlinks.
//
// # Ported from the kubelet
//
// AtomicWriter (pkg/volume/util), the configmap, secret, downwardapi and
// projected payloads, the hostPath type checks, the token manager
// (pkg/kubelet/token), the ClusterTrustBundle lookups, the downward API
// field and resource helpers (pkg/fieldpath, pkg/api/v1/resource). Changes
// are noted where they are. Krustlet (Rust) had no emptyDir, never
// refreshed tokens, had no resourceFieldRef and wrote files in place.
//
// # Use
//
//	vm, err := volume.NewManager(volume.Options{Client: client, Allocatable: allocatable})
//	paths, err := vm.SetUp(ctx, pod, podDir) // again every ~30 s while the pod runs
//	if errors.Is(err, volume.ErrSourceMissing) { /* FailedMount event, retry */ }
//	over, err := vm.SizeLimitViolations(pod, podDir) // every ~10 s: evict if any
//	err = vm.TearDown(ctx, pod.UID, podDir) // after the containers stopped
package volume
