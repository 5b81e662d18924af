// Package controlplane runs a real Kubernetes control plane on loopback for
// development and end-to-end tests: etcd, kube-apiserver,
// kube-controller-manager and kube-scheduler, built from their Go modules
// (see hack/k8s and hack/etcd, each a module of its own so that the product's
// go.mod never depends on k8s.io/kubernetes).
//
// Start builds the binaries once per pinned version (cached under
// $KRUSTLET_CACHE_DIR, by default ~/.cache/krustlet-go), generates a PKI with
// Go's crypto, writes kubeconfigs, starts the four processes on free loopback
// ports with their logs in files, waits until they are healthy and then
// installs what `kubeadm init` installs for joining nodes:
//
//   - a bootstrap token Secret in kube-system (group
//     system:bootstrappers:kubeadm:default-node-token);
//   - the ClusterRoleBindings that let that group create CSRs and have them
//     auto-approved (nodeclient), and let system:nodes renew their own
//     client certificates (selfnodeclient);
//   - the kube-public/cluster-info ConfigMap, readable anonymously, which the
//     controller-manager's bootstrapsigner signs for the token.
//
// kubelet-serving CSRs are never approved by the controller-manager; RunServingApprover
// approves those whose requester is the node the CSR names, as an operator's
// approver would.
//
// A typical test:
//
//	cp, err := controlplane.Start(ctx, controlplane.Options{Dir: t.TempDir()})
//	if err != nil { t.Fatal(err) }
//	defer cp.Stop()
//	client := cp.AdminClient()
//
// Stop ends every process it started, by PID, and leaves their logs under
// Dir/logs.
package controlplane
