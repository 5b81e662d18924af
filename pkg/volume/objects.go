package volume

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/clock"
)

// DefaultCacheTTL is how long an ObjectCache reuses an object it read.
const DefaultCacheTTL = 10 * time.Second

// ObjectCache reads the ConfigMaps and Secrets that pods reference, one GET
// by name at a time, and reuses each answer for a short TTL, as the
// kubelet's cache-based ConfigMap and Secret managers do. GET by name of an
// object referenced by a pod bound to the node is what the Node authorizer
// allows; LIST and WATCH of all ConfigMaps or Secrets are forbidden.
//
// Only successful reads are cached: a missing object is asked for again on
// the next call, so a pod starts as soon as it appears. Objects returned
// are shared and must not be modified. It is safe for concurrent use.
type ObjectCache struct {
	client kubernetes.Interface
	clock  clock.PassiveClock
	ttl    time.Duration

	mu        sync.Mutex
	entries   map[objectKey]*cacheEntry
	nextSweep time.Time

	// Which version of ClusterTrustBundles the server serves ("" none),
	// and when to ask again if none.
	ctbChecked   bool
	ctbServed    string
	ctbNextCheck time.Time
}

type objectKey struct{ kind, namespace, name string }

type cacheEntry struct {
	obj      any
	fetched  time.Time
	lastUsed time.Time
}

// NewObjectCache returns a cache reading through client. A zero ttl means
// DefaultCacheTTL; a nil clock the real one.
func NewObjectCache(client kubernetes.Interface, clk clock.PassiveClock, ttl time.Duration) *ObjectCache {
	if ttl == 0 {
		ttl = DefaultCacheTTL
	}
	if clk == nil {
		clk = clock.RealClock{}
	}
	return &ObjectCache{client: client, clock: clk, ttl: ttl, entries: map[objectKey]*cacheEntry{}}
}

// ConfigMap returns the named ConfigMap. A missing one is a *MissingError.
func (c *ObjectCache) ConfigMap(ctx context.Context, namespace, name string) (*v1.ConfigMap, error) {
	return c.configMap(ctx, namespace, name, false)
}

// Secret returns the named Secret. A missing one is a *MissingError.
func (c *ObjectCache) Secret(ctx context.Context, namespace, name string) (*v1.Secret, error) {
	return c.secret(ctx, namespace, name, false)
}

func (c *ObjectCache) configMap(ctx context.Context, namespace, name string, fresh bool) (*v1.ConfigMap, error) {
	obj, err := c.get(ctx, objectKey{"configmap", namespace, name}, fresh, func() (any, error) {
		return c.client.CoreV1().ConfigMaps(namespace).Get(ctx, name, metav1.GetOptions{})
	})
	if err != nil {
		return nil, err
	}
	return obj.(*v1.ConfigMap), nil
}

func (c *ObjectCache) secret(ctx context.Context, namespace, name string, fresh bool) (*v1.Secret, error) {
	obj, err := c.get(ctx, objectKey{"secret", namespace, name}, fresh, func() (any, error) {
		return c.client.CoreV1().Secrets(namespace).Get(ctx, name, metav1.GetOptions{})
	})
	if err != nil {
		return nil, err
	}
	return obj.(*v1.Secret), nil
}

// get returns the cached object for key unless it is older than the TTL
// (or fresh is set), in which case it reads it again.
func (c *ObjectCache) get(ctx context.Context, key objectKey, fresh bool, read func() (any, error)) (any, error) {
	now := c.clock.Now()
	c.mu.Lock()
	c.sweepLocked(now)
	if e, ok := c.entries[key]; ok && !fresh && now.Sub(e.fetched) < c.ttl {
		e.lastUsed = now
		c.mu.Unlock()
		return e.obj, nil
	}
	c.mu.Unlock()

	obj, err := read()
	if apierrors.IsNotFound(err) {
		c.mu.Lock()
		delete(c.entries, key)
		c.mu.Unlock()
		return nil, &MissingError{Kind: key.kind, Namespace: key.namespace, Name: key.name}
	}
	if err != nil {
		if key.namespace == "" {
			return nil, fmt.Errorf("getting %s %s: %w", key.kind, key.name, err)
		}
		return nil, fmt.Errorf("getting %s %s/%s: %w", key.kind, key.namespace, key.name, err)
	}
	c.mu.Lock()
	c.entries[key] = &cacheEntry{obj: obj, fetched: now, lastUsed: now}
	c.mu.Unlock()
	return obj, nil
}

// sweepLocked drops, at most once a minute, the entries nobody asked for
// in the last ten TTLs, so objects of pods gone do not stay in memory.
func (c *ObjectCache) sweepLocked(now time.Time) {
	if now.Before(c.nextSweep) {
		return
	}
	c.nextSweep = now.Add(time.Minute)
	for k, e := range c.entries {
		if now.Sub(e.lastUsed) > 10*c.ttl {
			delete(c.entries, k)
		}
	}
}

// isMissing reports whether err says an object or key does not exist.
func isMissing(err error) bool { return errors.Is(err, ErrSourceMissing) }
