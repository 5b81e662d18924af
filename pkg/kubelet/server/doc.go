// Package server is the node API on --address:--port (10250), the one the
// API server reaches for `kubectl logs` and metrics-server and Prometheus
// scrape, plus the plain /healthz on --healthz-bind-address:--healthz-port.
//
// Every request over TLS is authenticated and authorised as the kubelet
// does it: client certificates verified against the cluster CA
// (--client-ca-file, by default the CA the node already trusts), bearer
// tokens through TokenReview, decisions through SubjectAccessReview, with
// k8s.io/apiserver's delegating authenticator and authorizer and their
// caches. Paths map to the node subresources the kubelet uses: /stats →
// nodes/stats, /metrics → nodes/metrics, /logs → nodes/log, /pods →
// nodes/pods, /healthz → nodes/healthz (each falling back to nodes/proxy,
// as the kubelet's fine-grained authorization does), everything else →
// nodes/proxy. Anonymous requests are refused unless --anonymous-auth.
//
// Endpoints: /containerLogs/{namespace}/{pod}/{container} (follow streams
// as lines are written, through file-system notifications, and survives
// rotation), /pods, /stats/summary, /metrics/resource, /metrics, /healthz,
// /debug/pprof (with --enable-debugging-handlers); /exec, /attach,
// /portForward and /run answer 501 unless the provider implements them.
//
// The serving certificate is taken from the certificate manager on every
// handshake, so a rotated certificate is used without a restart.
package server
