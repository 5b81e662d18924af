package volume

import (
	"errors"
	"fmt"
)

// ErrSourceMissing marks an error caused by a ConfigMap, Secret or key that
// a pod needs and that does not exist (yet). The caller retries until it
// appears: the kubelet reports FailedMount for a volume and
// CreateContainerConfigError for an environment variable.
var ErrSourceMissing = errors.New("volume source missing")

// ErrUnsupported marks a volume type that this node cannot provide (a
// PersistentVolumeClaim, CSI, image volume…). Retrying does not help.
var ErrUnsupported = errors.New("volume type not supported")

// MissingError says which object, or which key of it, is missing.
// errors.Is(err, ErrSourceMissing) is true for it.
type MissingError struct {
	// Kind is "configmap" or "secret" (or "clustertrustbundle").
	Kind string
	// Namespace and Name identify the object.
	Namespace, Name string
	// Key is set when the object exists but lacks this key.
	Key string
}

func (e *MissingError) Error() string {
	if e.Key != "" {
		return fmt.Sprintf("couldn't find key %s in %s %s/%s", e.Key, e.Kind, e.Namespace, e.Name)
	}
	if e.Namespace == "" {
		return fmt.Sprintf("%s %q not found", e.Kind, e.Name)
	}
	return fmt.Sprintf("%s %q not found in namespace %q", e.Kind, e.Name, e.Namespace)
}

// Is makes errors.Is(err, ErrSourceMissing) true.
func (e *MissingError) Is(target error) bool { return target == ErrSourceMissing }
