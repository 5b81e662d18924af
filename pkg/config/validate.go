package config

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/validate/content"
	utilerrors "k8s.io/apimachinery/pkg/util/errors"
)

// kubeletLabels are the labels in the kubernetes.io and k8s.io namespaces
// that --node-labels may set, and kubeletLabelNamespaces the namespaces (and
// their subdomains) it may use freely. Ported from the kubelet's
// pkg/kubelet/apis/well_known_labels.go.
var (
	kubeletLabels = []string{
		v1.LabelHostname,
		v1.LabelArchStable,
		v1.LabelOSStable,
		v1.LabelInstanceTypeStable,
		v1.LabelTopologyRegion,
		v1.LabelTopologyZone,
		v1.LabelFailureDomainBetaRegion,
		v1.LabelFailureDomainBetaZone,
		v1.LabelInstanceType,      // beta.kubernetes.io/instance-type, deprecated
		"beta.kubernetes.io/arch", // deprecated
		"beta.kubernetes.io/os",   // deprecated
	}
	kubeletLabelNamespaces = []string{"kubelet.kubernetes.io", "node.kubernetes.io"}
)

// evictionSignals are the signals --eviction-hard accepts.
var evictionSignals = []EvictionSignal{
	SignalMemoryAvailable, SignalNodeFsAvailable, SignalNodeFsInodesFree,
	SignalImageFsAvailable, SignalImageFsInodesFree, SignalPIDAvailable,
}

// reservableResources are the resources --system-reserved and
// --kube-reserved accept, as in the kubelet.
var reservableResources = []v1.ResourceName{
	v1.ResourceCPU, v1.ResourceMemory, v1.ResourceEphemeralStorage, "pid",
}

// Validate checks every field and returns all problems at once. Each error
// names the flag, the bad value and what is accepted.
func (c *Config) Validate() error {
	el := &errorList{sources: c.sources, skip: map[string]bool{}}
	c.validate(el)
	return utilerrors.NewAggregate(el.errs)
}

func (c *Config) validate(el *errorList) {
	if errs := content.IsDNS1123Subdomain(c.NodeName); len(errs) > 0 {
		el.invalid("node-name", c.NodeName, "must be a valid DNS-1123 subdomain: "+strings.Join(errs, "; "))
	}
	c.validateNodeIPs(el)
	if c.Address == nil {
		el.invalid("address", "", "must be an IP address")
	}
	validatePort(el, "port", c.Port, 1)
	validatePort(el, "healthz-port", c.HealthzPort, 0)
	if c.HealthzBindAddress == nil {
		el.invalid("healthz-bind-address", "", "must be an IP address")
	}
	if c.DataDir == "" {
		el.invalid("data-dir", "", "must be a directory")
	}
	switch {
	case c.TLSCertFile != "" && c.TLSPrivateKeyFile == "":
		el.invalid("tls-private-key-file", "", "must be set when --tls-cert-file is set")
	case c.TLSCertFile == "" && c.TLSPrivateKeyFile != "":
		el.invalid("tls-cert-file", "", "must be set when --tls-private-key-file is set")
	}
	switch c.AuthorizationMode {
	case AuthorizationModeWebhook, AuthorizationModeAlwaysAllow:
	default:
		el.invalid("authorization-mode", string(c.AuthorizationMode), fmt.Sprintf("must be %s or %s", AuthorizationModeWebhook, AuthorizationModeAlwaysAllow))
	}
	positive(el, "max-pods", c.MaxPods)
	c.validateNodeLabels(el)
	c.validateTaints(el)
	if strings.TrimSpace(c.Provider) == "" {
		el.invalid("provider", c.Provider, "must name a provider, such as wasmtime")
	}
	for _, r := range c.InsecureRegistries {
		if reason := checkRegistryHost(r); reason != "" {
			el.invalid("insecure-registries", r, reason)
		}
	}
	validateReserved(el, "system-reserved", c.SystemReserved)
	validateReserved(el, "kube-reserved", c.KubeReserved)
	c.validateEvictionHard(el)
	percent(el, "image-gc-high-threshold", c.ImageGCHighThresholdPercent)
	percent(el, "image-gc-low-threshold", c.ImageGCLowThresholdPercent)
	if c.ImageGCLowThresholdPercent >= c.ImageGCHighThresholdPercent {
		el.invalid("image-gc-low-threshold", itoa(c.ImageGCLowThresholdPercent),
			fmt.Sprintf("must be lower than --image-gc-high-threshold (%d)", c.ImageGCHighThresholdPercent))
	}
	if c.ContainerLogMaxSize.Sign() <= 0 {
		el.invalid("container-log-max-size", c.ContainerLogMaxSize.String(), "must be a positive quantity such as 10Mi")
	}
	if c.ContainerLogMaxFiles < 2 {
		el.invalid("container-log-max-files", itoa(c.ContainerLogMaxFiles), "must be at least 2")
	}
	positive(el, "kube-api-qps", c.KubeAPIQPS)
	positive(el, "kube-api-burst", c.KubeAPIBurst)
	positiveDuration(el, "node-status-update-frequency", c.NodeStatusUpdateFrequency)
	positiveDuration(el, "node-status-report-frequency", c.NodeStatusReportFrequency)
	positive(el, "node-lease-duration-seconds", c.NodeLeaseDurationSeconds)
	positiveDuration(el, "shutdown-grace-period", c.ShutdownGracePeriod)
}

func (c *Config) validateNodeIPs(el *errorList) {
	var v4, v6 int
	strs := make([]string, 0, len(c.NodeIPs))
	for _, ip := range c.NodeIPs {
		strs = append(strs, ip.String())
		if ip.To4() != nil {
			v4++
		} else {
			v6++
		}
	}
	if v4 > 1 || v6 > 1 {
		el.invalid("node-ip", strings.Join(strs, ","), "must be at most one IPv4 and one IPv6 address")
	}
}

func (c *Config) validateNodeLabels(el *errorList) {
	for _, k := range sortedKeys(c.NodeLabels) {
		v := c.NodeLabels[k]
		kv := k + "=" + v
		if errs := content.IsLabelKey(k); len(errs) > 0 {
			el.invalid("node-labels", kv, "key: "+strings.Join(errs, "; "))
			continue
		}
		if errs := content.IsLabelValue(v); len(errs) > 0 {
			el.invalid("node-labels", kv, "value: "+strings.Join(errs, "; "))
			continue
		}
		if isKubernetesLabel(k) && !isKubeletLabel(k) {
			el.invalid("node-labels", kv, fmt.Sprintf("labels in the kubernetes.io and k8s.io namespaces must be one of %s or in the namespaces %s (or their subdomains)",
				strings.Join(kubeletLabels, ", "), strings.Join(kubeletLabelNamespaces, ", ")))
		}
	}
}

func labelNamespace(key string) string {
	if ns, _, ok := strings.Cut(key, "/"); ok {
		return ns
	}
	return ""
}

func inNamespace(ns, domain string) bool {
	return ns == domain || strings.HasSuffix(ns, "."+domain)
}

func isKubernetesLabel(key string) bool {
	ns := labelNamespace(key)
	return inNamespace(ns, "kubernetes.io") || inNamespace(ns, "k8s.io")
}

func isKubeletLabel(key string) bool {
	for _, l := range kubeletLabels {
		if key == l {
			return true
		}
	}
	ns := labelNamespace(key)
	for _, allowed := range kubeletLabelNamespaces {
		if inNamespace(ns, allowed) {
			return true
		}
	}
	return false
}

func (c *Config) validateTaints(el *errorList) {
	seen := map[string]bool{}
	for _, t := range c.RegisterWithTaints {
		s := t.ToString()
		if errs := content.IsLabelKey(t.Key); len(errs) > 0 {
			el.invalid("register-with-taints", s, "key: "+strings.Join(errs, "; "))
			continue
		}
		if t.Value != "" {
			if errs := content.IsLabelValue(t.Value); len(errs) > 0 {
				el.invalid("register-with-taints", s, "value: "+strings.Join(errs, "; "))
				continue
			}
		}
		switch t.Effect {
		case v1.TaintEffectNoSchedule, v1.TaintEffectPreferNoSchedule, v1.TaintEffectNoExecute:
		default:
			el.invalid("register-with-taints", s, fmt.Sprintf("effect must be %s, %s or %s",
				v1.TaintEffectNoSchedule, v1.TaintEffectPreferNoSchedule, v1.TaintEffectNoExecute))
			continue
		}
		id := t.Key + ":" + string(t.Effect)
		if seen[id] {
			el.invalid("register-with-taints", s, "duplicates another taint with the same key and effect")
		}
		seen[id] = true
	}
}

func validateReserved(el *errorList, flag string, rl v1.ResourceList) {
	for _, name := range sortedKeys(rl) {
		q := rl[v1.ResourceName(name)]
		kv := name + "=" + q.String()
		if !containsResource(v1.ResourceName(name)) {
			el.invalid(flag, kv, fmt.Sprintf("resource must be one of %s", joinResources()))
			continue
		}
		if q.Sign() < 0 {
			el.invalid(flag, kv, "quantity must not be negative")
		}
	}
}

func containsResource(n v1.ResourceName) bool {
	for _, r := range reservableResources {
		if r == n {
			return true
		}
	}
	return false
}

func joinResources() string {
	s := make([]string, len(reservableResources))
	for i, r := range reservableResources {
		s[i] = string(r)
	}
	return strings.Join(s, ", ")
}

func (c *Config) validateEvictionHard(el *errorList) {
	for _, t := range c.EvictionHard {
		value := ""
		if t.Quantity != nil {
			value = t.Quantity.String()
		} else {
			value = strconv.FormatFloat(float64(t.Percentage*100), 'f', -1, 32) + "%"
		}
		s := string(t.Signal) + "<" + value
		known := false
		for _, sig := range evictionSignals {
			known = known || t.Signal == sig
		}
		switch {
		case !known:
			names := make([]string, len(evictionSignals))
			for i, sig := range evictionSignals {
				names[i] = string(sig)
			}
			el.invalid("eviction-hard", s, "signal must be one of "+strings.Join(names, ", "))
		case t.Quantity != nil && t.Quantity.Sign() < 0:
			el.invalid("eviction-hard", s, "quantity must not be negative")
		case t.Quantity == nil && (t.Percentage < 0 || t.Percentage > 1):
			el.invalid("eviction-hard", s, "percentage must be between 0% and 100%")
		}
	}
}

// checkRegistryHost returns why r is not a host[:port], or "".
func checkRegistryHost(r string) string {
	const want = "must be host[:port], without scheme or path"
	if strings.Contains(r, "/") {
		return want
	}
	host := r
	if h, p, err := net.SplitHostPort(r); err == nil {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return want + "; port must be between 1 and 65535"
		}
		host = h
	} else if strings.Count(r, ":") == 1 {
		return want
	}
	if host == "" {
		return want
	}
	if net.ParseIP(strings.Trim(host, "[]")) != nil {
		return ""
	}
	if errs := content.IsDNS1123Subdomain(strings.ToLower(host)); len(errs) > 0 {
		return want + "; host: " + strings.Join(errs, "; ")
	}
	return ""
}

func validatePort(el *errorList, flag string, port, min int32) {
	if port < min || port > 65535 {
		el.invalid(flag, itoa(port), fmt.Sprintf("must be between %d and 65535", min))
	}
}

func positive(el *errorList, flag string, v int32) {
	if v <= 0 {
		el.invalid(flag, itoa(v), "must be greater than 0")
	}
}

func percent(el *errorList, flag string, v int32) {
	if v < 0 || v > 100 {
		el.invalid(flag, itoa(v), "must be between 0 and 100")
	}
}

func positiveDuration(el *errorList, flag string, d time.Duration) {
	if d <= 0 {
		el.invalid(flag, d.String(), "must be a duration greater than 0, such as 10s")
	}
}

func itoa(v int32) string { return strconv.Itoa(int(v)) }
