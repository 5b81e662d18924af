// Package logs owns container log files: where they live, how a run's
// stdout and stderr are written to them in the CRI log format, their
// rotation by size, which runs have one, and how they are read and followed
// for `kubectl logs`.
//
// Each run of a container writes one file,
//
//	<root>/<namespace>_<pod>_<uid>/<container>/<restartCount>.log
//
// as the kubelet lays out /var/log/pods, with one line per line of output:
//
//	2026-11-25T10:00:00.000000001Z stdout F hello
//
// A line longer than MaxLineBytes is split into partial ("P") lines and a
// final full ("F") one, as CRI runtimes do. When a file passes MaxSize it is
// renamed to <restartCount>.log.<timestamp> and a new one started; at most
// MaxFiles files are kept per run. The file of the previous run is kept so
// that `kubectl logs --previous` works; older runs (PruneRuns) and
// everything of a pod are removed by the core.
//
// Runs lists the runs of a container that have a log and RunFile picks the
// latest or the previous one; ParseReadOptions turns a /containerLogs query
// into ReadOptions, and Read writes a log as they ask and follows it:
//
//	o, err := logs.ParseReadOptions(r.URL.Query(), time.Now())
//	if err != nil {
//		http.Error(w, err.Error(), http.StatusBadRequest)
//		return
//	}
//	path, _, err := logs.RunFile(logs.ContainerDir(root, ns, pod, uid, container), o.Previous)
//	if err != nil { // ErrNoLog or ErrNoPreviousRun
//		http.Error(w, err.Error(), http.StatusBadRequest)
//		return
//	}
//	// running reports whether the run still writes to path.
//	err = logs.Read(ctx, w, w.(http.Flusher).Flush, path, running, o)
//
// Read needs nothing that only Writer does: it reads what containerd's CRI
// plugin writes (local-time stamps with their offset, fractions without
// trailing zeros) and follows a file across the kubelet log manager's
// rotation as across Writer's. It serves what the kubelet's
// pkg/kubelet/kuberuntime/logs serves, with two differences: tailLines
// counts lines of output, so a line split into partial entries counts once
// (and a last one with no full entry, as containerd leaves output that ends
// without a newline, counts too) where the kubelet counts the entries of
// the file; and timestamps are printed in time.RFC3339Nano, without the
// kubelet's fixed nine digits.
package logs
