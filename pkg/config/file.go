package config

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	kjson "k8s.io/apimachinery/pkg/runtime/serializer/json"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	kubeletv1beta1 "k8s.io/kubelet/config/v1beta1"
	"sigs.k8s.io/yaml"
)

// The documents a --config file may hold, at most one of each, in any
// order, separated by "---".
const (
	// kubeletKind is the kubelet's kubelet.config.k8s.io/v1beta1
	// KubeletConfiguration.
	kubeletKind = "KubeletConfiguration"
	// KrustletKind and KrustletAPIVersion are the kind and apiVersion of a
	// KrustletConfiguration.
	KrustletKind       = "KrustletConfiguration"
	KrustletAPIVersion = "krustlet.dev/v1alpha1"
)

// KrustletConfiguration is the config file document of the settings that
// the KubeletConfiguration has no field for. It is decoded strictly: an
// unknown or duplicate field is an error. As in the KubeletConfiguration,
// a field that is empty is not set.
type KrustletConfiguration struct {
	metav1.TypeMeta `json:",inline"`
	// Providers is --provider: the providers enabled on the node, the
	// default provider first.
	Providers []string `json:"providers,omitempty"`
	// RuntimeHandlers is --runtime-handlers: RuntimeClass handler name ->
	// provider.
	RuntimeHandlers map[string]string `json:"runtimeHandlers,omitempty"`
}

// fileField names the config file field of a setting.
type fileField struct {
	// kind is the kind of the document that holds the field.
	kind string
	// path is the field's JSON name, with the names of the structs that
	// hold it before it, separated by dots: "authentication.x509.clientCAFile".
	path string
	// relative marks a field that names a file, relative to the config
	// file's directory.
	relative bool
}

// kubeletField is the field at path of the KubeletConfiguration.
func kubeletField(path string) fileField { return fileField{kind: kubeletKind, path: path} }

// krustletField is the field at path of the KrustletConfiguration.
func krustletField(path string) fileField { return fileField{kind: KrustletKind, path: path} }

// kubeletPathField is the field at path of the KubeletConfiguration,
// which names a file relative to the config file.
func kubeletPathField(path string) fileField {
	return fileField{kind: kubeletKind, path: path, relative: true}
}

// configFile is a decoded --config file.
type configFile struct {
	// dir is the file's directory, against which relative paths resolve.
	dir string
	// docs holds the file's documents by kind.
	docs map[string]document
}

// document is one decoded document of a config file.
type document struct {
	// value is the decoded struct.
	value reflect.Value
	// fields is the document as JSON, which tells a false bool from an
	// absent one.
	fields map[string]any
}

// readConfigFile reads a config file of up to two YAML documents, a
// KubeletConfiguration and a KrustletConfiguration, or one JSON document.
// Each is decoded strictly: an unknown or duplicate field is an error, as
// is any other apiVersion or kind, or a second document of one kind.
func readConfigFile(path string) (*configFile, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading config file: %w", err)
	}
	var docs [][]byte
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	for {
		doc, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("config file %s: %w", path, err)
		}
		docs = append(docs, doc)
	}
	f := &configFile{dir: filepath.Dir(path), docs: map[string]document{}}
	for i, doc := range docs {
		if err := f.add(doc); err != nil {
			if len(docs) > 1 {
				return nil, fmt.Errorf("config file %s, document %d: %w", path, i+1, err)
			}
			return nil, fmt.Errorf("config file %s: %w", path, err)
		}
	}
	if len(f.docs) == 0 {
		return nil, fmt.Errorf("config file %s holds no document: want a %s, a %s or both", path, kubeletKind, KrustletKind)
	}
	return f, nil
}

// add decodes one document into f. An empty document is skipped.
func (f *configFile) add(data []byte) error {
	jsonData, err := yaml.YAMLToJSON(data)
	if err != nil {
		return err
	}
	var fields map[string]any
	if err := json.Unmarshal(jsonData, &fields); err != nil {
		return err
	}
	if fields == nil {
		return nil // nothing but comments
	}
	gvk, err := kjson.DefaultMetaFactory.Interpret(jsonData)
	if err != nil {
		return err
	}
	kubelet := kubeletv1beta1.SchemeGroupVersion.WithKind(kubeletKind)
	var doc any
	switch {
	case *gvk == kubelet:
		doc, err = decodeKubeletConfiguration(data)
	case gvk.GroupVersion().String() == KrustletAPIVersion && gvk.Kind == KrustletKind:
		kc := &KrustletConfiguration{}
		err = yaml.UnmarshalStrict(data, kc)
		doc = kc
	default:
		return fmt.Errorf("apiVersion %q kind %q is not supported: want apiVersion %q kind %q or apiVersion %q kind %q",
			gvk.GroupVersion().String(), gvk.Kind, kubelet.GroupVersion().String(), kubelet.Kind, KrustletAPIVersion, KrustletKind)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", gvk.Kind, err)
	}
	if _, ok := f.docs[gvk.Kind]; ok {
		return fmt.Errorf("a second %s: want at most one document of each kind", gvk.Kind)
	}
	f.docs[gvk.Kind] = document{value: reflect.ValueOf(doc).Elem(), fields: fields}
	return nil
}

func decodeKubeletConfiguration(data []byte) (*kubeletv1beta1.KubeletConfiguration, error) {
	scheme := runtime.NewScheme()
	if err := kubeletv1beta1.AddToScheme(scheme); err != nil {
		return nil, fmt.Errorf("building the config file scheme: %w", err)
	}
	decoder := kjson.NewSerializerWithOptions(kjson.DefaultMetaFactory, scheme, scheme,
		kjson.SerializerOptions{Yaml: true, Strict: true})
	kc := &kubeletv1beta1.KubeletConfiguration{}
	if _, _, err := decoder.Decode(data, nil, kc); err != nil {
		return nil, err
	}
	return kc, nil
}

// lookup returns the value of ff in the file, and whether the file sets
// it. Following the kubelet, a zero or nil field is not set, except a bool
// that is not a pointer (rotateCertificates, serverTLSBootstrap), which is
// set whenever present so that a file can turn it off.
func (f *configFile) lookup(ff fileField) (reflect.Value, bool) {
	doc, ok := f.docs[ff.kind]
	if !ok {
		return reflect.Value{}, false
	}
	index, ok := fieldIndex(doc.value.Type(), ff.path)
	if !ok {
		panic(fmt.Sprintf("%s has no field %q", ff.kind, ff.path)) // TestSettings checks every entry
	}
	v, err := doc.value.FieldByIndexErr(index)
	if err != nil {
		return reflect.Value{}, false // a nil struct on the way
	}
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			return reflect.Value{}, false
		}
		v = v.Elem()
	case reflect.Bool:
		if !doc.present(ff.path) {
			return reflect.Value{}, false
		}
	case reflect.Map, reflect.Slice:
		if v.Len() == 0 {
			return reflect.Value{}, false
		}
	default:
		if v.IsZero() {
			return reflect.Value{}, false
		}
	}
	if d, ok := v.Interface().(metav1.Duration); ok {
		v = reflect.ValueOf(d.Duration)
	}
	if ff.relative && !filepath.IsAbs(v.String()) {
		v = reflect.ValueOf(filepath.Join(f.dir, v.String()))
	}
	return v, true
}

// fieldIndex returns the index of the field at path, by JSON names, in the
// struct type t.
func fieldIndex(t reflect.Type, path string) ([]int, bool) {
	var index []int
	for _, name := range strings.Split(path, ".") {
		if t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		if t.Kind() != reflect.Struct {
			return nil, false
		}
		sf, ok := fieldByJSONName(t, name)
		if !ok {
			return nil, false
		}
		index = append(index, sf.Index...)
		t = sf.Type
	}
	return index, true
}

func fieldByJSONName(t reflect.Type, name string) (reflect.StructField, bool) {
	for i := range t.NumField() {
		sf := t.Field(i)
		if n, _, _ := strings.Cut(sf.Tag.Get("json"), ","); n == name && !sf.Anonymous {
			return sf, true
		}
	}
	return reflect.StructField{}, false
}

// present reports whether the document holds the field at path.
func (d document) present(path string) bool {
	var v any = d.fields
	for _, name := range strings.Split(path, ".") {
		m, ok := v.(map[string]any)
		if !ok {
			return false
		}
		if v, ok = m[name]; !ok {
			return false
		}
	}
	return true
}

// unusedFieldWarnings returns one warning per field that is set in the
// KubeletConfiguration but that no setting reads. It descends into the
// structs of the KubeletConfiguration API (authentication, authorization,
// ...) so that, for example, authentication.webhook.cacheTTL is named
// precisely.
func (f *configFile) unusedFieldWarnings() []string {
	doc, ok := f.docs[kubeletKind]
	if !ok {
		return nil
	}
	used := map[string]bool{}
	for _, s := range settings {
		if s.file.kind == kubeletKind {
			used[s.file.path] = true
		}
	}
	apiPkg := doc.value.Type().PkgPath()
	var warnings []string
	var walk func(v reflect.Value, prefix string)
	walk = func(v reflect.Value, prefix string) {
		t := v.Type()
		for i := range t.NumField() {
			sf := t.Field(i)
			if sf.Anonymous || !sf.IsExported() {
				continue // TypeMeta
			}
			fv := v.Field(i)
			name, _, _ := strings.Cut(sf.Tag.Get("json"), ",")
			if name == "" || name == "-" || fv.IsZero() {
				continue
			}
			p := prefix + name
			switch {
			case used[p]:
			case fv.Kind() == reflect.Struct && sf.Type.PkgPath() == apiPkg:
				walk(fv, p+".")
			default:
				warnings = append(warnings, fmt.Sprintf("config file field %q does not apply to krustlet and is ignored", p))
			}
		}
	}
	walk(doc.value, "")
	return warnings
}
