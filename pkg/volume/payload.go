package volume

import (
	"fmt"
	"path/filepath"

	v1 "k8s.io/api/core/v1"
)

// This file ports MakePayload of the kubelet's configmap and secret volume
// plugins. Differences: item paths are validated here (the AtomicWriter
// validates them again), and a missing key is a *MissingError.

// configMapPayload projects a ConfigMap: every key of Data and BinaryData,
// or only the listed items. A listed key that is missing is skipped when
// optional, an error otherwise.
func configMapPayload(items []v1.KeyToPath, cm *v1.ConfigMap, defaultMode int32, optional bool) (map[string]fileProjection, error) {
	payload := make(map[string]fileProjection, len(cm.Data)+len(cm.BinaryData))
	if len(items) == 0 {
		for name, data := range cm.Data {
			payload[name] = fileProjection{Data: []byte(data), Mode: defaultMode}
		}
		for name, data := range cm.BinaryData {
			payload[name] = fileProjection{Data: data, Mode: defaultMode}
		}
		return payload, nil
	}
	for _, ktp := range items {
		if err := validatePath(ktp.Path); err != nil {
			return nil, fmt.Errorf("item %q: %w", ktp.Path, err)
		}
		var data []byte
		if s, ok := cm.Data[ktp.Key]; ok {
			data = []byte(s)
		} else if b, ok := cm.BinaryData[ktp.Key]; ok {
			data = b
		} else {
			if optional {
				continue
			}
			return nil, &MissingError{Kind: "configmap", Namespace: cm.Namespace, Name: cm.Name, Key: ktp.Key}
		}
		payload[filepath.Clean(ktp.Path)] = fileProjection{Data: data, Mode: itemMode(ktp.Mode, defaultMode)}
	}
	return payload, nil
}

// secretPayload projects a Secret as configMapPayload does a ConfigMap.
func secretPayload(items []v1.KeyToPath, s *v1.Secret, defaultMode int32, optional bool) (map[string]fileProjection, error) {
	payload := make(map[string]fileProjection, len(s.Data))
	if len(items) == 0 {
		for name, data := range s.Data {
			payload[name] = fileProjection{Data: data, Mode: defaultMode}
		}
		return payload, nil
	}
	for _, ktp := range items {
		if err := validatePath(ktp.Path); err != nil {
			return nil, fmt.Errorf("item %q: %w", ktp.Path, err)
		}
		data, ok := s.Data[ktp.Key]
		if !ok {
			if optional {
				continue
			}
			return nil, &MissingError{Kind: "secret", Namespace: s.Namespace, Name: s.Name, Key: ktp.Key}
		}
		payload[filepath.Clean(ktp.Path)] = fileProjection{Data: data, Mode: itemMode(ktp.Mode, defaultMode)}
	}
	return payload, nil
}

func itemMode(mode *int32, defaultMode int32) int32 {
	if mode != nil {
		return *mode
	}
	return defaultMode
}

// modeOrDefault is the volume's defaultMode, or the API default 0644 when
// the pod did not come through the API server's defaulting.
func modeOrDefault(mode *int32) int32 {
	if mode != nil {
		return *mode
	}
	return v1.ConfigMapVolumeSourceDefaultMode
}
