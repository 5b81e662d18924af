// Package node keeps this machine's Node object true: registration (create,
// or reconcile an existing Node), the node status as a list of small setters
// patched only when something changed or the report interval passed, and the
// node Lease.
//
// It follows the kubelet's kubelet_node_status.go and nodestatus/setters.go:
// each Setter owns one concern (addresses, capacity, node info, daemon
// endpoints, one condition each) and is given only the functions it needs,
// so it can be tested alone with fake readings. Capacity and conditions come
// from real readings of the machine (Machine): CPUs and memory respecting
// the cgroup limits that apply to this process, ephemeral storage of the
// filesystem holding the data dir, PIDs, compared against the hard eviction
// thresholds.
//
// Changes from krustlet: a 40 s lease renewed every 10 s (krustlet held 300
// s), capacity read from the machine (krustlet hard-coded it), all four
// conditions (krustlet reported only Ready), reconciliation of an existing
// Node and registration again when an administrator deletes it.
package node
