package config

import (
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/validate/content"
	utilerrors "k8s.io/apimachinery/pkg/util/errors"
	"k8s.io/apimachinery/pkg/util/validation"
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

// report records that value is invalid for the setting being checked, and
// why; the error names the setting's flag and where its value came from.
type report func(value, reason string)

// Validate checks every field and returns all problems at once. Each error
// names the flag, the bad value and what is accepted.
func (c *Config) Validate() error {
	el := &errorList{sources: c.sources, skip: map[string]bool{}}
	c.validate(el)
	return utilerrors.NewAggregate(el.errs)
}

// validate runs the check of every setting but those in el.skip, which
// failed to parse.
func (c *Config) validate(el *errorList) {
	for _, s := range settings {
		if s.check != nil && !el.skip[s.flag] {
			s.check(c, el.reporter(s.flag))
		}
	}
}

func checkNodeIPs(c *Config, bad report) {
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
		bad(strings.Join(strs, ","), "must be at most one IPv4 and one IPv6 address")
	}
}

func checkNodeLabels(c *Config, bad report) {
	for _, k := range sortedKeys(c.NodeLabels) {
		v := c.NodeLabels[k]
		kv := k + "=" + v
		if errs := content.IsLabelKey(k); len(errs) > 0 {
			bad(kv, "key: "+strings.Join(errs, "; "))
			continue
		}
		if errs := content.IsLabelValue(v); len(errs) > 0 {
			bad(kv, "value: "+strings.Join(errs, "; "))
			continue
		}
		if isKubernetesLabel(k) && !isKubeletLabel(k) {
			bad(kv, fmt.Sprintf("labels in the kubernetes.io and k8s.io namespaces must be one of %s or in the namespaces %s (or their subdomains)",
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
	ns := labelNamespace(key)
	return slices.Contains(kubeletLabels, key) ||
		slices.ContainsFunc(kubeletLabelNamespaces, func(allowed string) bool { return inNamespace(ns, allowed) })
}

func checkTaints(c *Config, bad report) {
	seen := map[string]bool{}
	for _, t := range c.RegisterWithTaints {
		s := t.ToString()
		if errs := content.IsLabelKey(t.Key); len(errs) > 0 {
			bad(s, "key: "+strings.Join(errs, "; "))
			continue
		}
		if t.Value != "" {
			if errs := content.IsLabelValue(t.Value); len(errs) > 0 {
				bad(s, "value: "+strings.Join(errs, "; "))
				continue
			}
		}
		switch t.Effect {
		case v1.TaintEffectNoSchedule, v1.TaintEffectPreferNoSchedule, v1.TaintEffectNoExecute:
		default:
			bad(s, fmt.Sprintf("effect must be %s, %s or %s",
				v1.TaintEffectNoSchedule, v1.TaintEffectPreferNoSchedule, v1.TaintEffectNoExecute))
			continue
		}
		id := t.Key + ":" + string(t.Effect)
		if seen[id] {
			bad(s, "duplicates another taint with the same key and effect")
		}
		seen[id] = true
	}
}

func checkReserved(rl v1.ResourceList, bad report) {
	for _, name := range sortedKeys(rl) {
		q := rl[v1.ResourceName(name)]
		kv := name + "=" + q.String()
		if !slices.Contains(reservableResources, v1.ResourceName(name)) {
			bad(kv, "resource must be one of "+join(reservableResources))
			continue
		}
		if q.Sign() < 0 {
			bad(kv, "quantity must not be negative")
		}
	}
}

// join lists names separated by commas.
func join[T ~string](names []T) string {
	s := make([]string, len(names))
	for i, n := range names {
		s[i] = string(n)
	}
	return strings.Join(s, ", ")
}

func checkEvictionHard(c *Config, bad report) {
	for _, t := range c.EvictionHard {
		value := ""
		if t.Quantity != nil {
			value = t.Quantity.String()
		} else {
			value = strconv.FormatFloat(float64(t.Percentage*100), 'f', -1, 32) + "%"
		}
		s := string(t.Signal) + "<" + value
		switch {
		case !slices.Contains(evictionSignals, t.Signal):
			bad(s, "signal must be one of "+join(evictionSignals))
		case t.Quantity != nil && t.Quantity.Sign() < 0:
			bad(s, "quantity must not be negative")
		case t.Quantity == nil && (t.Percentage < 0 || t.Percentage > 1):
			bad(s, "percentage must be between 0% and 100%")
		}
	}
}

func checkProviders(c *Config, bad report) {
	list := strings.Join(c.Providers, ",")
	if len(c.Providers) == 0 {
		bad(list, "must name a provider, such as wasmtime")
		return
	}
	if slices.Contains(c.Providers, "") {
		bad(list, "provider names must not be empty")
	}
	count := map[string]int{}
	for _, p := range c.Providers {
		if count[p]++; count[p] == 2 && p != "" {
			bad(list, fmt.Sprintf("must name each provider once: %q is repeated", p))
		}
	}
}

// checkRuntimeHandlers checks that each handler is a name a RuntimeClass
// accepts and that its provider is enabled.
func checkRuntimeHandlers(c *Config, bad report) {
	for _, h := range sortedKeys(c.RuntimeHandlers) {
		p := c.RuntimeHandlers[h]
		kv := h + "=" + p
		if errs := validation.IsDNS1123Label(h); len(errs) > 0 {
			bad(kv, "handler must be a DNS-1123 label, as RuntimeClass.handler: "+strings.Join(errs, "; "))
			continue
		}
		if !slices.Contains(c.Providers, p) {
			bad(kv, fmt.Sprintf("provider %q is not enabled: --provider lists %s", p, strings.Join(c.Providers, ",")))
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

func checkIP(ip net.IP, bad report) {
	if ip == nil {
		bad("", "must be an IP address")
	}
}

func checkPort(port, min int32, bad report) {
	if port < min || port > 65535 {
		bad(itoa(port), fmt.Sprintf("must be between %d and 65535", min))
	}
}

func checkPositive(v int32, bad report) {
	if v <= 0 {
		bad(itoa(v), "must be greater than 0")
	}
}

func checkPercent(v int32, bad report) {
	if v < 0 || v > 100 {
		bad(itoa(v), "must be between 0 and 100")
	}
}

func checkPositiveDuration(d time.Duration, bad report) {
	if d <= 0 {
		bad(d.String(), "must be a duration greater than 0, such as 10s")
	}
}

func itoa(v int32) string { return strconv.Itoa(int(v)) }
