package k8scheck

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// Object is one document of a manifest file, decoded into its typed struct.
type Object struct {
	File  string // the file's base name
	Index int    // the document's position in the file, from 0
	Kind  string
	Name  string
	// Namespace is the object's metadata.namespace ("" for cluster-scoped
	// kinds).
	Namespace string
	Obj       any // *appsv1.Deployment, *corev1.Service, ...
	Meta      *metav1.ObjectMeta
}

func (o Object) String() string {
	return fmt.Sprintf("%s: %s/%s", o.File, o.Kind, o.Name)
}

// kinds are the kinds a manifest may hold, by "apiVersion kind". Any other
// kind is an error: a check for it would have to be written first.
var kinds = map[string]func() any{
	"v1 Namespace":                           func() any { return &corev1.Namespace{} },
	"v1 ServiceAccount":                      func() any { return &corev1.ServiceAccount{} },
	"v1 ConfigMap":                           func() any { return &corev1.ConfigMap{} },
	"v1 Secret":                              func() any { return &corev1.Secret{} },
	"v1 Service":                             func() any { return &corev1.Service{} },
	"apps/v1 Deployment":                     func() any { return &appsv1.Deployment{} },
	"apps/v1 StatefulSet":                    func() any { return &appsv1.StatefulSet{} },
	"batch/v1 Job":                           func() any { return &batchv1.Job{} },
	"policy/v1 PodDisruptionBudget":          func() any { return &policyv1.PodDisruptionBudget{} },
	"autoscaling/v2 HorizontalPodAutoscaler": func() any { return &autoscalingv2.HorizontalPodAutoscaler{} },
	"networking.k8s.io/v1 NetworkPolicy":     func() any { return &networkingv1.NetworkPolicy{} },
}

var clusterScoped = map[string]bool{"Namespace": true}

// splitDocuments splits a multi-document YAML stream, dropping documents that
// hold only comments or nothing.
func splitDocuments(data []byte) ([][]byte, error) {
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var docs [][]byte
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, err
		}
		var v any
		if err := yaml.Unmarshal(doc, &v); err != nil {
			return nil, fmt.Errorf("document %d: %w", len(docs), err)
		}
		if v == nil {
			continue
		}
		docs = append(docs, doc)
	}
}

// DecodeManifest decodes every document of a manifest strictly into the
// typed struct of its kind.
func DecodeManifest(file string, data []byte) ([]Object, error) {
	docs, err := splitDocuments(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	var objs []Object
	var errs []error
	for i, doc := range docs {
		o, err := decodeObject(doc)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: document %d: %w", file, i, err))
			continue
		}
		o.File, o.Index = file, i
		objs = append(objs, o)
	}
	return objs, errors.Join(errs...)
}

func decodeObject(doc []byte) (Object, error) {
	var tm metav1.TypeMeta
	if err := yaml.Unmarshal(doc, &tm); err != nil {
		return Object{}, err
	}
	if tm.APIVersion == "" || tm.Kind == "" {
		return Object{}, errors.New("no apiVersion or kind")
	}
	newObj, ok := kinds[tm.APIVersion+" "+tm.Kind]
	if !ok {
		return Object{}, fmt.Errorf("%s %s is not a kind this check knows", tm.APIVersion, tm.Kind)
	}
	obj := newObj()
	if err := yaml.UnmarshalStrict(doc, obj); err != nil {
		return Object{}, fmt.Errorf("%s: %w", tm.Kind, err)
	}
	// encoding/json matches field names without regard to case, the API
	// server does not: compare the keys with those the struct writes back.
	var in, out any
	if err := yaml.Unmarshal(doc, &in); err != nil {
		return Object{}, err
	}
	b, err := json.Marshal(obj)
	if err != nil {
		return Object{}, err
	}
	if err := json.Unmarshal(b, &out); err != nil {
		return Object{}, err
	}
	if err := sameCase(in, out, ""); err != nil {
		return Object{}, fmt.Errorf("%s: %w", tm.Kind, err)
	}
	meta := objectMeta(obj)
	o := Object{Kind: tm.Kind, Name: meta.Name, Namespace: meta.Namespace, Obj: obj, Meta: meta}
	if err := checkMeta(o); err != nil {
		return Object{}, err
	}
	return o, nil
}

// sameCase reports a key of in that out spells in another case.
func sameCase(in, out any, path string) error {
	switch iv := in.(type) {
	case map[string]any:
		ov, ok := out.(map[string]any)
		if !ok {
			return nil
		}
		for k, v := range iv {
			if o, ok := ov[k]; ok {
				if err := sameCase(v, o, path+"."+k); err != nil {
					return err
				}
				continue
			}
			for ok := range ov {
				if strings.EqualFold(ok, k) {
					return fmt.Errorf("field %s%s: unknown field, did you mean %q", path, "."+k, ok)
				}
			}
		}
	case []any:
		ov, ok := out.([]any)
		if !ok || len(ov) != len(iv) {
			return nil
		}
		for i := range iv {
			if err := sameCase(iv[i], ov[i], fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
	}
	return nil
}

func objectMeta(obj any) *metav1.ObjectMeta {
	switch o := obj.(type) {
	case *corev1.Namespace:
		return &o.ObjectMeta
	case *corev1.ServiceAccount:
		return &o.ObjectMeta
	case *corev1.ConfigMap:
		return &o.ObjectMeta
	case *corev1.Secret:
		return &o.ObjectMeta
	case *corev1.Service:
		return &o.ObjectMeta
	case *appsv1.Deployment:
		return &o.ObjectMeta
	case *appsv1.StatefulSet:
		return &o.ObjectMeta
	case *batchv1.Job:
		return &o.ObjectMeta
	case *policyv1.PodDisruptionBudget:
		return &o.ObjectMeta
	case *autoscalingv2.HorizontalPodAutoscaler:
		return &o.ObjectMeta
	case *networkingv1.NetworkPolicy:
		return &o.ObjectMeta
	}
	panic(fmt.Sprintf("k8scheck: no metadata for %T", obj))
}

// checkMeta checks what the API server would check of names and labels.
func checkMeta(o Object) error {
	var errs []string
	if o.Name == "" {
		errs = append(errs, "metadata.name is empty")
	}
	nameCheck := validation.IsDNS1123Subdomain
	if o.Kind == "Namespace" || o.Kind == "Service" {
		nameCheck = validation.IsDNS1123Label
	}
	for _, e := range nameCheck(o.Name) {
		errs = append(errs, fmt.Sprintf("metadata.name %q: %s", o.Name, e))
	}
	if clusterScoped[o.Kind] != (o.Namespace == "") {
		if clusterScoped[o.Kind] {
			errs = append(errs, "a cluster-scoped kind has a namespace")
		} else {
			errs = append(errs, "metadata.namespace is not set")
		}
	}
	errs = append(errs, checkLabels("metadata.labels", o.Meta.Labels)...)
	if len(errs) > 0 {
		return fmt.Errorf("%s %s: %s", o.Kind, o.Name, strings.Join(errs, "; "))
	}
	return nil
}

func checkLabels(where string, labels map[string]string) []string {
	var errs []string
	for k, v := range labels {
		for _, e := range validation.IsQualifiedName(k) {
			errs = append(errs, fmt.Sprintf("%s key %q: %s", where, k, e))
		}
		for _, e := range validation.IsValidLabelValue(v) {
			errs = append(errs, fmt.Sprintf("%s %s=%q: %s", where, k, v, e))
		}
	}
	sort.Strings(errs)
	return errs
}

// Kustomization is the part of a kustomization.yaml this directory uses.
type Kustomization struct {
	APIVersion string   `json:"apiVersion"`
	Kind       string   `json:"kind"`
	Namespace  string   `json:"namespace,omitempty"`
	Resources  []string `json:"resources"`
	Images     []struct {
		Name    string `json:"name"`
		NewName string `json:"newName,omitempty"`
		NewTag  string `json:"newTag,omitempty"`
		Digest  string `json:"digest,omitempty"`
	} `json:"images,omitempty"`
}

// Set is the manifests of a directory: the objects kustomization.yaml
// applies, and the Secrets of the template, which the objects may refer to.
type Set struct {
	Dir           string
	Kustomization Kustomization
	Objects       []Object
	// Templates are the Secrets of secret.example.yaml: created by hand, so
	// not applied, but referred to by the workloads.
	Templates []Object
}

// SecretTemplate is the file of Secrets with placeholders.
const SecretTemplate = "secret.example.yaml"

// LoadDir reads kustomization.yaml in dir, decodes every resource it lists
// and the Secret template. Every .yaml file in dir must be either listed
// or the template, so that no manifest goes unchecked.
func LoadDir(dir string) (*Set, error) {
	s := &Set{Dir: dir}
	data, err := os.ReadFile(filepath.Join(dir, "kustomization.yaml"))
	if err != nil {
		return nil, err
	}
	if err := yaml.UnmarshalStrict(data, &s.Kustomization); err != nil {
		return nil, fmt.Errorf("kustomization.yaml: %w", err)
	}
	k := s.Kustomization
	if k.APIVersion != "kustomize.config.k8s.io/v1beta1" || k.Kind != "Kustomization" {
		return nil, fmt.Errorf("kustomization.yaml: apiVersion %q kind %q, want kustomize.config.k8s.io/v1beta1 Kustomization", k.APIVersion, k.Kind)
	}
	var errs []error
	files, err := filepath.Glob(filepath.Join(dir, "*.y*ml"))
	if err != nil {
		return nil, err
	}
	for _, f := range files {
		base := filepath.Base(f)
		if base != "kustomization.yaml" && base != SecretTemplate && !slices.Contains(k.Resources, base) {
			errs = append(errs, fmt.Errorf("%s is in %s but not in kustomization.yaml's resources", base, dir))
		}
	}
	if slices.Contains(k.Resources, SecretTemplate) {
		errs = append(errs, fmt.Errorf("kustomization.yaml applies %s, which holds placeholders", SecretTemplate))
	}
	for _, r := range k.Resources {
		if strings.Contains(r, "/") {
			errs = append(errs, fmt.Errorf("kustomization.yaml: resource %q is not a file of this directory", r))
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, r))
		if err != nil {
			errs = append(errs, fmt.Errorf("kustomization.yaml: %w", err))
			continue
		}
		objs, err := DecodeManifest(r, data)
		errs = append(errs, err)
		s.Objects = append(s.Objects, objs...)
	}
	if data, err := os.ReadFile(filepath.Join(dir, SecretTemplate)); err == nil {
		objs, err := DecodeManifest(SecretTemplate, data)
		errs = append(errs, err)
		for _, o := range objs {
			if o.Kind != "Secret" {
				errs = append(errs, fmt.Errorf("%s holds a %s; it is for Secrets only", o, o.Kind))
			}
		}
		s.Templates = objs
	} else if !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, err)
	}
	return s, errors.Join(errs...)
}

// CheckYAMLSyntax checks that every document of an example file is YAML
// with an apiVersion and a kind, or, for Helm values, YAML at all.
func CheckYAMLSyntax(file string, data []byte, wantKind bool) error {
	docs, err := splitDocuments(data)
	if err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	if len(docs) == 0 {
		return fmt.Errorf("%s: no YAML documents", file)
	}
	for i, doc := range docs {
		var m map[string]any
		if err := yaml.UnmarshalStrict(doc, &m); err != nil {
			return fmt.Errorf("%s: document %d: %w", file, i, err)
		}
		if wantKind && (m["apiVersion"] == nil || m["kind"] == nil) {
			return fmt.Errorf("%s: document %d has no apiVersion or kind", file, i)
		}
	}
	return nil
}
