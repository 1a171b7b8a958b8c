package k8scheck

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// Workload is an object that runs pods.
type Workload struct {
	Object
	Template *corev1.PodTemplateSpec
	Selector *metav1.LabelSelector // nil for a Job
	Replicas int32                 // 0 for a Job
	// LongRunning is true for Deployments and StatefulSets, which must have
	// probes; a Job runs to completion.
	LongRunning bool
}

// Workloads returns the objects of s that run pods.
func (s *Set) Workloads() []Workload {
	var ws []Workload
	for _, o := range s.Objects {
		switch obj := o.Obj.(type) {
		case *appsv1.Deployment:
			ws = append(ws, Workload{Object: o, Template: &obj.Spec.Template, Selector: obj.Spec.Selector, Replicas: replicas(obj.Spec.Replicas), LongRunning: true})
		case *appsv1.StatefulSet:
			ws = append(ws, Workload{Object: o, Template: &obj.Spec.Template, Selector: obj.Spec.Selector, Replicas: replicas(obj.Spec.Replicas), LongRunning: true})
		case *batchv1.Job:
			ws = append(ws, Workload{Object: o, Template: &obj.Spec.Template})
		}
	}
	return ws
}

func replicas(p *int32) int32 {
	if p == nil {
		return 1
	}
	return *p
}

func (s *Set) find(kind, namespace, name string) *Object {
	for i, o := range s.Objects {
		if o.Kind == kind && o.Namespace == namespace && o.Name == name {
			return &s.Objects[i]
		}
	}
	return nil
}

func (s *Set) secret(namespace, name string) bool {
	if s.find("Secret", namespace, name) != nil {
		return true
	}
	for _, o := range s.Templates {
		if o.Namespace == namespace && o.Name == name {
			return true
		}
	}
	return false
}

// selects returns the workloads whose pods sel selects, in namespace.
func (s *Set) selects(namespace string, sel labels.Selector) []Workload {
	var ws []Workload
	for _, w := range s.Workloads() {
		if w.Namespace == namespace && !sel.Empty() && sel.Matches(labels.Set(w.Template.Labels)) {
			ws = append(ws, w)
		}
	}
	return ws
}

// Options are the facts the checks compare the manifests with.
type Options struct {
	// ConfigMap is the name of the ConfigMap whose STRATA_DRAIN_DELAY and
	// STRATA_SHUTDOWN_TIMEOUT the grace periods must exceed.
	ConfigMap string
}

// Check runs every semantic check over s and returns the problems found.
func (s *Set) Check(opt Options) []error {
	var errs []error
	add := func(o fmt.Stringer, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", o, fmt.Sprintf(format, args...)))
	}

	namespaces := map[string]bool{}
	for _, o := range s.Objects {
		if o.Kind == "Namespace" {
			namespaces[o.Name] = true
		}
	}
	for _, o := range append(slices.Clone(s.Objects), s.Templates...) {
		if o.Namespace != "" && !namespaces[o.Namespace] {
			add(o, "namespace %q is not one of the manifests", o.Namespace)
		}
		if o.Meta.Labels["app.kubernetes.io/part-of"] != "strata" {
			add(o, "label app.kubernetes.io/part-of=strata is missing")
		}
	}
	if s.Kustomization.Namespace != "" && !namespaces[s.Kustomization.Namespace] {
		errs = append(errs, fmt.Errorf("kustomization.yaml: namespace %q is not one of the manifests", s.Kustomization.Namespace))
	}
	for _, o := range s.Templates {
		sec := o.Obj.(*corev1.Secret)
		if len(sec.Data) > 0 {
			add(o, "a template holds data; write placeholders in stringData")
		}
		for k, v := range sec.StringData {
			if !strings.Contains(v, "CHANGE_ME") {
				add(o, "stringData.%s has no CHANGE_ME placeholder: a template must not hold a real value", k)
			}
		}
	}

	grace := time.Duration(0)
	if cm := s.find("ConfigMap", "strata", opt.ConfigMap); cm == nil {
		errs = append(errs, fmt.Errorf("ConfigMap %s is not in the manifests", opt.ConfigMap))
	} else {
		data := cm.Obj.(*corev1.ConfigMap).Data
		for _, key := range []string{"STRATA_DRAIN_DELAY", "STRATA_SHUTDOWN_TIMEOUT"} {
			d, err := time.ParseDuration(data[key])
			if err != nil {
				add(cm, "%s: %v", key, err)
			}
			grace += d
		}
		for k := range data {
			if !strings.HasPrefix(k, "STRATA_") {
				add(cm, "key %s is not a STRATA_* variable", k)
			}
		}
	}

	images := map[string]bool{}
	for _, w := range s.Workloads() {
		errs = append(errs, s.checkWorkload(w, grace)...)
		for _, c := range w.Template.Spec.Containers {
			images[c.Image] = true
		}
	}
	if len(images) > 1 {
		errs = append(errs, fmt.Errorf("the workloads run different images %v; they must run one release", mapKeys(images)))
	}

	for _, o := range s.Objects {
		switch obj := o.Obj.(type) {
		case *corev1.Service:
			errs = append(errs, s.checkService(o, obj)...)
		case *policyv1.PodDisruptionBudget:
			errs = append(errs, s.checkPDB(o, obj)...)
		case *autoscalingv2.HorizontalPodAutoscaler:
			errs = append(errs, s.checkHPA(o, obj)...)
		case *networkingv1.NetworkPolicy:
			errs = append(errs, s.checkNetworkPolicy(o, obj)...)
		}
	}
	return errs
}

func mapKeys(m map[string]bool) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// CheckImage reports an image reference that is not pinned: no tag, the
// tag "latest", or no registry-independent version.
func CheckImage(image string) error {
	if image == "" {
		return errors.New("no image")
	}
	if _, digest, ok := strings.Cut(image, "@"); ok {
		if !strings.HasPrefix(digest, "sha256:") || len(digest) != len("sha256:")+64 {
			return fmt.Errorf("image %q: the digest is not sha256:<64 hex digits>", image)
		}
		return nil
	}
	name := image
	if i := strings.LastIndex(name, "/"); i >= 0 {
		name = name[i+1:]
	}
	_, tag, ok := strings.Cut(name, ":")
	if !ok || tag == "" {
		return fmt.Errorf("image %q has no tag (it would be latest)", image)
	}
	if tag == "latest" {
		return fmt.Errorf("image %q: the tag latest is not pinned", image)
	}
	return nil
}

func (s *Set) checkWorkload(w Workload, grace time.Duration) []error {
	var errs []error
	add := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", w.Object, fmt.Sprintf(format, args...)))
	}
	t := w.Template
	spec := &t.Spec
	for _, e := range checkLabels("template labels", t.Labels) {
		add("%s", e)
	}
	if w.Selector != nil {
		sel, err := metav1.LabelSelectorAsSelector(w.Selector)
		switch {
		case err != nil:
			add("selector: %v", err)
		case sel.Empty():
			add("the selector is empty")
		case !sel.Matches(labels.Set(t.Labels)):
			add("the selector %s does not select the pod template's labels %v", sel, t.Labels)
		}
		for _, other := range s.Workloads() {
			if other.Name != w.Name && other.Namespace == w.Namespace && err == nil && sel.Matches(labels.Set(other.Template.Labels)) {
				add("the selector also selects the pods of %s", other.Object)
			}
		}
	}
	if w.LongRunning {
		if spec.TerminationGracePeriodSeconds == nil || time.Duration(*spec.TerminationGracePeriodSeconds)*time.Second <= grace {
			add("terminationGracePeriodSeconds must exceed the drain delay plus the shutdown timeout (%s)", grace)
		}
		if w.Replicas > 1 {
			if len(spec.TopologySpreadConstraints) == 0 {
				add("%d replicas and no topologySpreadConstraints", w.Replicas)
			}
			for _, c := range spec.TopologySpreadConstraints {
				sel, err := metav1.LabelSelectorAsSelector(c.LabelSelector)
				if err != nil || sel.Empty() || !sel.Matches(labels.Set(t.Labels)) {
					add("the topology spread constraint on %s does not select the workload's own pods", c.TopologyKey)
				}
			}
		}
	} else if spec.RestartPolicy != corev1.RestartPolicyNever && spec.RestartPolicy != corev1.RestartPolicyOnFailure {
		add("a Job's restartPolicy must be Never or OnFailure")
	}
	if spec.ServiceAccountName != "" && s.find("ServiceAccount", w.Namespace, spec.ServiceAccountName) == nil {
		add("service account %s is not in the manifests", spec.ServiceAccountName)
	}
	if spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken {
		add("automountServiceAccountToken is not false: Strata does not use the Kubernetes API")
	}
	psc := spec.SecurityContext
	podNonRoot := psc != nil && psc.RunAsNonRoot != nil && *psc.RunAsNonRoot
	podSeccomp := psc != nil && psc.SeccompProfile != nil && psc.SeccompProfile.Type == corev1.SeccompProfileTypeRuntimeDefault
	if psc != nil && psc.RunAsUser != nil && *psc.RunAsUser == 0 {
		add("securityContext.runAsUser is 0")
	}

	volumes := map[string]corev1.Volume{}
	for _, v := range spec.Volumes {
		volumes[v.Name] = v
		switch {
		case v.Secret != nil && !s.secret(w.Namespace, v.Secret.SecretName):
			add("volume %s: Secret %s is neither in the manifests nor in %s", v.Name, v.Secret.SecretName, SecretTemplate)
		case v.ConfigMap != nil && s.find("ConfigMap", w.Namespace, v.ConfigMap.Name) == nil:
			add("volume %s: ConfigMap %s is not in the manifests", v.Name, v.ConfigMap.Name)
		case v.EmptyDir != nil && v.EmptyDir.SizeLimit == nil:
			add("volume %s: an emptyDir without sizeLimit", v.Name)
		}
	}
	if len(spec.InitContainers) > 0 {
		add("init containers are not checked; add checks for them first")
	}
	if len(spec.Containers) == 0 {
		add("no containers")
	}
	for _, c := range spec.Containers {
		cadd := func(format string, args ...any) { add("container %s: %s", c.Name, fmt.Sprintf(format, args...)) }
		if err := CheckImage(c.Image); err != nil {
			cadd("%v", err)
		}
		switch c.ImagePullPolicy {
		case "", corev1.PullAlways, corev1.PullIfNotPresent, corev1.PullNever:
		default:
			cadd("imagePullPolicy %q is not Always, IfNotPresent or Never", c.ImagePullPolicy)
		}
		if len(c.Command) > 0 {
			cadd("command overrides the image's entrypoint /strata; pass args")
		}
		for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
			req, okReq := c.Resources.Requests[r]
			lim, okLim := c.Resources.Limits[r]
			if !okReq {
				cadd("no %s request", r)
			}
			if !okLim {
				cadd("no %s limit", r)
			}
			if okReq && okLim && req.Cmp(lim) > 0 {
				cadd("the %s request %s is above the limit %s", r, req.String(), lim.String())
			}
		}
		sc := c.SecurityContext
		if sc == nil {
			cadd("no securityContext")
		} else {
			if !podNonRoot && (sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot) {
				cadd("runAsNonRoot is not true")
			}
			if sc.RunAsNonRoot != nil && !*sc.RunAsNonRoot {
				cadd("runAsNonRoot is false")
			}
			if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
				cadd("allowPrivilegeEscalation is not false")
			}
			if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
				cadd("readOnlyRootFilesystem is not true")
			}
			if sc.Privileged != nil && *sc.Privileged {
				cadd("privileged")
			}
			if sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") {
				cadd("capabilities do not drop ALL")
			} else if len(sc.Capabilities.Add) > 0 {
				cadd("adds capabilities %v", sc.Capabilities.Add)
			}
			if !podSeccomp && (sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault) {
				cadd("no RuntimeDefault seccomp profile")
			}
		}
		for _, ef := range c.EnvFrom {
			switch {
			case ef.ConfigMapRef != nil && s.find("ConfigMap", w.Namespace, ef.ConfigMapRef.Name) == nil:
				cadd("envFrom: ConfigMap %s is not in the manifests", ef.ConfigMapRef.Name)
			case ef.SecretRef != nil && !s.secret(w.Namespace, ef.SecretRef.Name):
				cadd("envFrom: Secret %s is neither in the manifests nor in %s", ef.SecretRef.Name, SecretTemplate)
			}
		}
		mounts := map[string]bool{}
		for _, m := range c.VolumeMounts {
			if _, ok := volumes[m.Name]; !ok {
				cadd("volume mount %s: no volume of that name", m.Name)
			}
			if mounts[m.MountPath] {
				cadd("two volume mounts on %s", m.MountPath)
			}
			mounts[m.MountPath] = true
		}
		// A read-only root file system needs somewhere to write: the data
		// directory and /tmp.
		if sc != nil && sc.ReadOnlyRootFilesystem != nil && *sc.ReadOnlyRootFilesystem {
			for _, p := range []string{"/data", "/tmp"} {
				if !mounts[p] {
					cadd("the root file system is read-only and nothing is mounted on %s", p)
				}
			}
		}
		ports := map[string]int32{}
		for _, p := range c.Ports {
			if p.Name != "" {
				ports[p.Name] = p.ContainerPort
			}
		}
		if w.LongRunning {
			checkProbe := func(kind string, p *corev1.Probe, path string) {
				if p == nil {
					cadd("no %s probe", kind)
					return
				}
				if p.HTTPGet == nil {
					cadd("the %s probe is not an HTTP GET", kind)
					return
				}
				if p.HTTPGet.Path != path {
					cadd("the %s probe gets %q, want %s", kind, p.HTTPGet.Path, path)
				}
				if !portExists(p.HTTPGet.Port, ports) {
					cadd("the %s probe's port %s is not a port of the container", kind, p.HTTPGet.Port.String())
				}
			}
			checkProbe("liveness", c.LivenessProbe, "/healthz")
			checkProbe("readiness", c.ReadinessProbe, "/readyz")
			checkProbe("startup", c.StartupProbe, "/healthz")
		}
		errs = append(errs, s.checkArgs(w, c)...)
	}
	return errs
}

func portExists(p intstr.IntOrString, ports map[string]int32) bool {
	if p.Type == intstr.String {
		_, ok := ports[p.StrVal]
		return ok
	}
	for _, n := range ports {
		if n == p.IntVal {
			return true
		}
	}
	return false
}

// Flag returns the value of --name in args ("--name value" or
// "--name=value").
func Flag(args []string, name string) (string, bool) {
	for i, a := range args {
		if a == "--"+name && i+1 < len(args) {
			return args[i+1], true
		}
		if v, ok := strings.CutPrefix(a, "--"+name+"="); ok {
			return v, true
		}
	}
	return "", false
}

// checkArgs checks the strata command line: a Deployment serves with the
// role its component label names; a gateway discovers a headless Service.
func (s *Set) checkArgs(w Workload, c corev1.Container) []error {
	var errs []error
	add := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: container %s: %s", w.Object, c.Name, fmt.Sprintf(format, args...)))
	}
	if !w.LongRunning {
		return nil
	}
	if len(c.Args) == 0 || c.Args[0] != "serve" {
		add("args do not start with serve")
		return errs
	}
	component := w.Template.Labels["app.kubernetes.io/component"]
	roles, _ := Flag(c.Args, "roles")
	if roles != component {
		add("--roles %q is not the component label %q", roles, component)
	}
	if roles == "gateway" {
		host, ok := Flag(c.Args, "gateway-discover-dns")
		if !ok {
			if _, ok := Flag(c.Args, "gateway-upstreams"); !ok {
				add("a gateway with neither --gateway-discover-dns nor --gateway-upstreams")
			}
			return errs
		}
		parts := strings.Split(host, ".")
		if len(parts) < 2 {
			add("--gateway-discover-dns %q is not SERVICE.NAMESPACE[.svc.cluster.local]", host)
			return errs
		}
		svcObj := s.find("Service", parts[1], parts[0])
		if svcObj == nil {
			add("--gateway-discover-dns %q: no Service %s in namespace %s", host, parts[0], parts[1])
			return errs
		}
		svc := svcObj.Obj.(*corev1.Service)
		if svc.Spec.ClusterIP != corev1.ClusterIPNone {
			add("--gateway-discover-dns %q: Service %s is not headless, so its name resolves to one virtual IP", host, svc.Name)
		}
		port, _ := Flag(c.Args, "gateway-discover-port")
		n, err := strconv.Atoi(port)
		found := false
		for _, p := range svc.Spec.Ports {
			found = found || (err == nil && p.Port == int32(n))
		}
		if !found {
			add("--gateway-discover-port %q is not a port of Service %s", port, svc.Name)
		}
		sel := labels.SelectorFromSet(svc.Spec.Selector)
		for _, t := range s.selects(svc.Namespace, sel) {
			if t.Template.Labels["app.kubernetes.io/component"] != "api" {
				add("the discovered Service %s selects %s, which is not an API workload", svc.Name, t.Object)
			}
		}
	}
	return errs
}

func (s *Set) checkService(o Object, svc *corev1.Service) []error {
	var errs []error
	add := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", o, fmt.Sprintf(format, args...)))
	}
	if len(svc.Spec.Selector) == 0 {
		add("no selector")
		return errs
	}
	ws := s.selects(o.Namespace, labels.SelectorFromSet(svc.Spec.Selector))
	if len(ws) == 0 {
		add("the selector %v selects no workload's pods", svc.Spec.Selector)
	}
	for _, p := range svc.Spec.Ports {
		target := p.TargetPort
		if target.Type == intstr.Int && target.IntVal == 0 {
			target = intstr.FromInt32(p.Port)
		}
		for _, w := range ws {
			found := false
			for _, c := range w.Template.Spec.Containers {
				ports := map[string]int32{}
				for _, cp := range c.Ports {
					ports[cp.Name] = cp.ContainerPort
				}
				found = found || portExists(target, ports)
			}
			if !found {
				add("port %s: target port %s is not a container port of %s", p.Name, target.String(), w.Object)
			}
		}
	}
	return errs
}

func (s *Set) checkPDB(o Object, pdb *policyv1.PodDisruptionBudget) []error {
	var errs []error
	add := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", o, fmt.Sprintf(format, args...)))
	}
	sel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
	if err != nil || pdb.Spec.Selector == nil {
		add("no valid selector")
		return errs
	}
	ws := s.selects(o.Namespace, sel)
	var long []Workload
	for _, w := range ws {
		if w.LongRunning {
			long = append(long, w)
		}
	}
	if len(long) != 1 {
		add("selects the pods of %d Deployments, want 1", len(long))
		return errs
	}
	w := long[0]
	if (pdb.Spec.MinAvailable == nil) == (pdb.Spec.MaxUnavailable == nil) {
		add("set one of minAvailable and maxUnavailable")
		return errs
	}
	if m := pdb.Spec.MinAvailable; m != nil {
		n, err := intstr.GetScaledValueFromIntOrPercent(m, int(w.Replicas), true)
		if err != nil || n >= int(w.Replicas) {
			add("minAvailable %s of %d replicas lets no pod be evicted: node drains would block", m.String(), w.Replicas)
		}
	}
	if m := pdb.Spec.MaxUnavailable; m != nil {
		n, err := intstr.GetScaledValueFromIntOrPercent(m, int(w.Replicas), false)
		if err != nil || n < 1 {
			add("maxUnavailable %s of %d replicas lets no pod be evicted: node drains would block", m.String(), w.Replicas)
		}
		if n >= int(w.Replicas) {
			add("maxUnavailable %s of %d replicas protects nothing", m.String(), w.Replicas)
		}
	}
	return errs
}

func (s *Set) checkHPA(o Object, hpa *autoscalingv2.HorizontalPodAutoscaler) []error {
	var errs []error
	add := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", o, fmt.Sprintf(format, args...)))
	}
	ref := hpa.Spec.ScaleTargetRef
	if ref.APIVersion != "apps/v1" || ref.Kind != "Deployment" {
		add("scaleTargetRef is %s %s, want apps/v1 Deployment", ref.APIVersion, ref.Kind)
		return errs
	}
	target := s.find("Deployment", o.Namespace, ref.Name)
	if target == nil {
		add("scaleTargetRef: no Deployment %s", ref.Name)
		return errs
	}
	dep := target.Obj.(*appsv1.Deployment)
	min := int32(1)
	if hpa.Spec.MinReplicas != nil {
		min = *hpa.Spec.MinReplicas
	}
	if min < 2 {
		add("minReplicas %d: one pod is no cluster", min)
	}
	if hpa.Spec.MaxReplicas < min {
		add("maxReplicas %d is below minReplicas %d", hpa.Spec.MaxReplicas, min)
	}
	if r := replicas(dep.Spec.Replicas); r < min || r > hpa.Spec.MaxReplicas {
		add("the Deployment's %d replicas are outside [%d, %d]", r, min, hpa.Spec.MaxReplicas)
	}
	if len(hpa.Spec.Metrics) == 0 {
		add("no metrics")
	}
	for _, m := range hpa.Spec.Metrics {
		if m.Type != autoscalingv2.ResourceMetricSourceType || m.Resource == nil {
			continue
		}
		if m.Resource.Target.Type == autoscalingv2.UtilizationMetricType {
			for _, c := range dep.Spec.Template.Spec.Containers {
				if _, ok := c.Resources.Requests[m.Resource.Name]; !ok {
					add("scales on %s utilization, but container %s requests no %s", m.Resource.Name, c.Name, m.Resource.Name)
				}
			}
			if u := m.Resource.Target.AverageUtilization; u == nil || *u <= 0 || *u > 100 {
				add("averageUtilization is not in 1..100")
			}
		}
	}
	return errs
}

func (s *Set) checkNetworkPolicy(o Object, np *networkingv1.NetworkPolicy) []error {
	var errs []error
	add := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", o, fmt.Sprintf(format, args...)))
	}
	sel, err := metav1.LabelSelectorAsSelector(&np.Spec.PodSelector)
	if err != nil {
		add("podSelector: %v", err)
		return errs
	}
	ws := s.selects(o.Namespace, sel)
	if len(ws) == 0 {
		add("the podSelector selects no workload's pods")
	}
	for _, rule := range np.Spec.Ingress {
		for _, p := range rule.Ports {
			if p.Port == nil {
				continue
			}
			for _, w := range ws {
				found := false
				for _, c := range w.Template.Spec.Containers {
					ports := map[string]int32{}
					for _, cp := range c.Ports {
						ports[cp.Name] = cp.ContainerPort
					}
					found = found || portExists(*p.Port, ports)
				}
				if !found {
					add("ingress port %s is not a container port of %s", p.Port.String(), w.Object)
				}
			}
		}
		for _, peer := range rule.From {
			if peer.PodSelector == nil || peer.NamespaceSelector != nil {
				continue
			}
			psel, err := metav1.LabelSelectorAsSelector(peer.PodSelector)
			if err != nil || len(s.selects(o.Namespace, psel)) == 0 {
				add("an ingress peer's podSelector selects no workload's pods")
			}
		}
	}
	return errs
}
