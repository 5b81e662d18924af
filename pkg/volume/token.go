package volume

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"
)

// This file ports the kubelet's pkg/kubelet/token: service account tokens
// from the TokenRequest API, cached per (service account, audience,
// expiration, bound pod) and refreshed once 80 % of their lifetime (less a
// jitter of up to 10 s) or 24 h has passed. A failed refresh keeps the old
// token while it is valid. Changes: contextual logging, an injected clock,
// no background garbage collection (TearDown drops a pod's tokens).

const (
	maxTokenTTL                   = 24 * time.Hour
	maxTokenJitter                = 10 * time.Second
	defaultTokenExpirationSeconds = 3600 // the API default of expirationSeconds
)

type tokenManager struct {
	client kubernetes.Interface
	clock  clock.PassiveClock
	// jitter returns a random duration in [0, maxTokenJitter); tests
	// replace it.
	jitter func() time.Duration

	mu    sync.Mutex
	cache map[string]*authenticationv1.TokenRequest
}

func newTokenManager(client kubernetes.Interface, clk clock.PassiveClock) *tokenManager {
	return &tokenManager{
		client: client,
		clock:  clk,
		jitter: func() time.Duration { return time.Duration(rand.Int64N(int64(maxTokenJitter))) },
		cache:  map[string]*authenticationv1.TokenRequest{},
	}
}

// token returns a token of the service account sa of namespace ns for
// request, from the cache unless it needs a refresh.
func (m *tokenManager) token(ctx context.Context, ns, sa string, req *authenticationv1.TokenRequest) (*authenticationv1.TokenRequest, error) {
	key := tokenKey(ns, sa, req)
	m.mu.Lock()
	cached, ok := m.cache[key]
	m.mu.Unlock()
	if ok && !m.requiresRefresh(cached) {
		return cached, nil
	}

	tr, err := m.client.CoreV1().ServiceAccounts(ns).CreateToken(ctx, sa, req, metav1.CreateOptions{})
	if err == nil && (tr == nil || tr.Status.Token == "") {
		err = fmt.Errorf("empty token in the answer")
	}
	if err != nil {
		switch {
		case !ok:
			return nil, fmt.Errorf("requesting a token for service account %s/%s: %w", ns, sa, err)
		case m.expired(cached):
			return nil, fmt.Errorf("token for service account %s/%s expired and refresh failed: %w", ns, sa, err)
		default:
			klog.FromContext(ctx).Error(err, "Couldn't refresh token; keeping the current one", "serviceAccount", klog.KRef(ns, sa))
			return cached, nil
		}
	}
	// The answer's spec is what the server granted; keep the requested
	// spec where the answer lacks it, so requiresRefresh can work.
	if tr.Spec.ExpirationSeconds == nil {
		tr.Spec.ExpirationSeconds = req.Spec.ExpirationSeconds
	}
	if tr.Spec.BoundObjectRef == nil {
		tr.Spec.BoundObjectRef = req.Spec.BoundObjectRef
	}
	if tr.Status.ExpirationTimestamp.IsZero() {
		tr.Status.ExpirationTimestamp = metav1.NewTime(m.clock.Now().Add(time.Duration(*tr.Spec.ExpirationSeconds) * time.Second))
	}
	m.mu.Lock()
	m.cache[key] = tr
	m.mu.Unlock()
	return tr, nil
}

// forget drops the tokens bound to a pod.
func (m *tokenManager) forget(uid types.UID) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for k, tr := range m.cache {
		if tr.Spec.BoundObjectRef != nil && tr.Spec.BoundObjectRef.UID == uid {
			delete(m.cache, k)
		}
	}
}

func (m *tokenManager) expired(tr *authenticationv1.TokenRequest) bool {
	return m.clock.Now().After(tr.Status.ExpirationTimestamp.Time)
}

// requiresRefresh reports whether the token is at least 80 % of its TTL
// old, or 24 h, less a jitter.
func (m *tokenManager) requiresRefresh(tr *authenticationv1.TokenRequest) bool {
	if tr.Spec.ExpirationSeconds == nil {
		return false
	}
	ttl := time.Duration(*tr.Spec.ExpirationSeconds) * time.Second
	now := m.clock.Now()
	exp := tr.Status.ExpirationTimestamp.Time
	iat := exp.Add(-ttl)
	jitter := m.jitter()
	return !now.Before(refreshAt(iat, exp, ttl).Add(-jitter))
}

// refreshAt is when a token issued at iat, expiring at exp, needs a
// refresh (before any jitter): at 80 % of its TTL, or after 24 h.
func refreshAt(iat, exp time.Time, ttl time.Duration) time.Time {
	at := exp.Add(-ttl * 20 / 100)
	if day := iat.Add(maxTokenTTL); day.Before(at) {
		at = day
	}
	return at
}

// nextRefresh returns the earliest time a token bound to pod uid needs a
// refresh.
func (m *tokenManager) nextRefresh(uid types.UID) (time.Time, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var next time.Time
	found := false
	for _, tr := range m.cache {
		if tr.Spec.BoundObjectRef == nil || tr.Spec.BoundObjectRef.UID != uid || tr.Spec.ExpirationSeconds == nil {
			continue
		}
		ttl := time.Duration(*tr.Spec.ExpirationSeconds) * time.Second
		exp := tr.Status.ExpirationTimestamp.Time
		at := refreshAt(exp.Add(-ttl), exp, ttl)
		if !found || at.Before(next) {
			next, found = at, true
		}
	}
	return next, found
}

// tokenKey is safe to log: it holds no secret.
func tokenKey(ns, sa string, tr *authenticationv1.TokenRequest) string {
	var exp int64
	if tr.Spec.ExpirationSeconds != nil {
		exp = *tr.Spec.ExpirationSeconds
	}
	var ref authenticationv1.BoundObjectReference
	if tr.Spec.BoundObjectRef != nil {
		ref = *tr.Spec.BoundObjectRef
	}
	return fmt.Sprintf("%q/%q/%#v/%#v/%#v", sa, ns, tr.Spec.Audiences, exp, ref)
}
