// Command bench measures krustlet-go against kwok, a node agent that only
// writes statuses, on one local control plane in one run, and writes a
// Markdown report, a JSON file with every figure and PNG plots of the
// latency distributions.
//
// Scenarios, in order (each one a function in a file of its own name):
//
//   - latency: bursts of N pods of a cached module, from creation to
//     scheduled, Running and Ready as seen on a watch (latency.go);
//   - throughput: run-to-completion pods, completed per second end to end
//     and on the node (containerStatuses startedAt/finishedAt)
//     (throughput.go);
//   - coldwarm: the first pod of a module never seen (compile) against the
//     next ones (compiled cache), for a tiny WAT module and the Go-built
//     testmod (coldwarm.go);
//   - apicost: API writes per minute of an idle node and of a node with
//     steady pods, from the API server's audit log (apicost.go);
//   - density: sleeping pods added in steps on a fresh node, with its RSS,
//     threads, lease renewals and the start latency of one more pod at each
//     step (density.go);
//   - manynodes: many krustlet nodes (then as many kwok nodes) joined to the
//     control plane, with a few pods each: readiness, lease renewals and
//     control-plane CPU (manynodes.go).
//
// kwok is built from hack/kwok (a module of its own) and cached like the
// control-plane binaries. Every process the bench starts runs on loopback
// and is stopped by its PID.
//
//	make bench         # full run, ~15 minutes, writes docs/bench
//	make bench-smoke   # small numbers, a few minutes; fails only if a scenario errors
//
// or directly, from hack/bench: go run . -smoke -out /tmp/bench; -only runs
// some scenarios, -keep keeps the logs and data dirs, and -render FILE writes
// the report and plots again from a results.json without running anything.
package main
