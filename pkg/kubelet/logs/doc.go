// Package logs owns container log files: where they live, how a run's
// stdout and stderr are written to them in the CRI log format, and their
// rotation by size.
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
// that `kubectl logs --previous` works; older runs and everything of a pod
// are removed by the core.
package logs
