// Package admission decides, as the kubelet's lifecycle predicates do,
// whether this node takes a pod bound to it: enough pod slots
// (--max-pods), the sum of requests of the admitted pods against the
// node's allocatable, node name, node selector and required node affinity,
// NoExecute taints the pod does not tolerate, and what the provider cannot
// run. A rejection carries the kubelet's reason (OutOfpods, OutOfcpu,
// OutOfmemory, OutOfephemeral-storage, NodeAffinity, NodeName, Taint, …)
// and a message a user understands; the pod then fails with them.
package admission
