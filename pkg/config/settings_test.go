package config

import (
	"reflect"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubeletv1beta1 "k8s.io/kubelet/config/v1beta1"
)

// documentTypes are the Go types of the config file documents, by kind.
var documentTypes = map[string]reflect.Type{
	kubeletKind:  reflect.TypeFor[kubeletv1beta1.KubeletConfiguration](),
	KrustletKind: reflect.TypeFor[KrustletConfiguration](),
}

// TestSettings checks the declarations of the settings table: every flag
// and alias is declared once, has help, and every config file field exists
// in its document and converts to its flag's type.
func TestSettings(t *testing.T) {
	o := NewOptions()
	declared := map[string]string{}
	for i, s := range settings {
		t.Run(s.flag, func(t *testing.T) {
			if s.usage == "" {
				t.Error("no usage")
			}
			for _, name := range append([]string{s.flag}, s.aliases...) {
				if other, ok := declared[name]; ok {
					t.Errorf("--%s is declared by --%s too", name, other)
				}
				declared[name] = s.flag
			}
			if s.file == (fileField{}) {
				return
			}
			doc, ok := documentTypes[s.file.kind]
			if !ok {
				t.Fatalf("unknown document kind %q", s.file.kind)
			}
			index, ok := fieldIndex(doc, s.file.path)
			if !ok {
				t.Fatalf("%s has no field %q", s.file.kind, s.file.path)
			}
			ft := doc.FieldByIndex(index).Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			v := reflect.Zero(ft)
			if d, ok := v.Interface().(metav1.Duration); ok {
				v = reflect.ValueOf(d.Duration)
			}
			if err := o.values[i].set(v); err != nil {
				t.Errorf("%s field %q: %v", s.file.kind, s.file.path, err)
			}
		})
	}
}

// TestDefaultsAreNotShared shows that a value loaded into one Options does
// not change the defaults of the next.
func TestDefaultsAreNotShared(t *testing.T) {
	mustLoad(t, []string{"--eviction-hard=pid.available<1%", "--node-labels=a=b", "--register-with-taints=k:NoSchedule"}, nil)
	cfg := mustLoad(t, nil, nil)
	if len(cfg.EvictionHard) != 4 || cfg.NodeLabels != nil || cfg.RegisterWithTaints != nil {
		t.Errorf("defaults changed: eviction %v, labels %v, taints %v", cfg.EvictionHard, cfg.NodeLabels, cfg.RegisterWithTaints)
	}
}
