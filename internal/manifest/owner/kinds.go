package owner

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	cluster "github.com/rabbitmq/cluster-operator/v2/api/v1beta1"
	topology "github.com/rabbitmq/messaging-topology-operator/api/v1beta1"
	strimzi "github.com/scholzj/strimzi-go/pkg/apis/kafka.strimzi.io/v1beta2"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apimachineryvalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	"k8s.io/apimachinery/pkg/util/validation/field"
	eventingv1 "knative.dev/eventing/pkg/apis/eventing/v1"
	"knative.dev/eventing/pkg/apis/feature"
	"knative.dev/pkg/apis"
	servingv1 "knative.dev/serving/pkg/apis/serving/v1"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/clima-dev/clima/internal/manifest"
)

// kind is how one kind is checked, and by whose code.
type kind struct {
	name       string
	namespaced bool
	check      func(ctx context.Context, c *Checker, gvk string, doc []byte) field.ErrorList
	// nameRule is the API server's rule for the kind's names (a DNS
	// subdomain unless set).
	nameRule apimachineryvalidation.ValidateNameFunc
}

// kinds names a check for every kind the manifests use; an object of any
// other kind fails until one is named here.
var kinds = map[string]kind{
	"v1 Namespace":        {"k8s.io/api strict decoding", false, core[corev1.Namespace](nil), nil},
	"v1 ConfigMap":        {"k8s.io/api strict decoding", true, core[corev1.ConfigMap](nil), nil},
	"v1 Secret":           {"k8s.io/api strict decoding + core enums", true, core(secretEnums), nil},
	"v1 Service":          {"k8s.io/api strict decoding + core enums", true, core(serviceEnums), nil},
	"apps/v1 StatefulSet": {"k8s.io/api strict decoding + core enums", true, core(statefulSetEnums), nil},

	"networking.k8s.io/v1 NetworkPolicy": {"k8s.io/api strict decoding + networking enums + label selectors", true, core(networkPolicyEnums), nil},

	"serving.knative.dev/v1 Service":  {"Knative CRD schema + serving types + SetDefaults/Validate", true, knative[servingv1.Service](), nil},
	"eventing.knative.dev/v1 Broker":  {"Knative CRD schema + eventing types + SetDefaults/Validate", true, knative[eventingv1.Broker](), nil},
	"eventing.knative.dev/v1 Trigger": {"Knative CRD schema + eventing types + SetDefaults/Validate", true, knative[eventingv1.Trigger](), nil},

	"rabbitmq.com/v1beta1 RabbitmqCluster": {"cluster-operator CRD schema + types", true, rabbit[cluster.RabbitmqCluster](nil), nil},
	"rabbitmq.com/v1beta1 Queue":           {"topology-operator CRD schema + ValidateCreate", true, rabbit(webhook[topology.Queue]), nil},
	"rabbitmq.com/v1beta1 Exchange":        {"topology-operator CRD schema + ValidateCreate", true, rabbit(webhook[topology.Exchange]), nil},
	"rabbitmq.com/v1beta1 Binding":         {"topology-operator CRD schema + ValidateCreate", true, rabbit(webhook[topology.Binding]), nil},
	"rabbitmq.com/v1beta1 User":            {"topology-operator CRD schema + ValidateCreate", true, rabbit(webhook[topology.User]), nil},
	"rabbitmq.com/v1beta1 Permission":      {"topology-operator CRD schema + ValidateCreate", true, rabbit(webhook[topology.Permission]), nil},
	"rabbitmq.com/v1beta1 Policy":          {"topology-operator CRD schema + ValidateCreate", true, rabbit(webhook[topology.Policy]), nil},

	"kafka.strimzi.io/v1beta2 Kafka":         {"strimzi-go strict decoding + Strimzi enums", true, strimziKind[strimzi.Kafka](), nil},
	"kafka.strimzi.io/v1beta2 KafkaNodePool": {"strimzi-go strict decoding + Strimzi enums", true, strimziKind[strimzi.KafkaNodePool](), nil},
	"kafka.strimzi.io/v1beta2 KafkaTopic":    {"strimzi-go strict decoding + Strimzi enums", true, strimziKind[strimzi.KafkaTopic](), nil},

	"sources.knative.dev/v1 KafkaSource":          {"clima's KafkaSource type + eventing-kafka-broker's rules + duck Destination", true, kafkaSource, nil},
	"sources.knative.dev/v1alpha1 RabbitmqSource": {"clima's RabbitmqSource type + eventing-rabbitmq's rules + duck Destination", true, rabbitmqSource, nil},
}

// core decodes strictly into a k8s.io/api type; the validation of core
// objects lives in k8s.io/kubernetes, which is not importable, so enums
// are checked against the constants k8s.io/api declares.
func core[T any](enums func(*T) field.ErrorList) func(context.Context, *Checker, string, []byte) field.ErrorList {
	return func(_ context.Context, _ *Checker, _ string, doc []byte) field.ErrorList {
		obj := new(T)
		errs := strictInto(doc, obj, nil)
		if enums != nil && len(errs) == 0 {
			errs = append(errs, enums(obj)...)
		}
		return errs
	}
}

func enum[T ~string](path *field.Path, v T, allowed ...T) field.ErrorList {
	if v == "" || slices.Contains(allowed, v) {
		return nil
	}
	names := make([]string, len(allowed))
	for i, a := range allowed {
		names[i] = string(a)
	}
	return field.ErrorList{field.NotSupported(path, v, names)}
}

func serviceEnums(s *corev1.Service) field.ErrorList {
	spec := field.NewPath("spec")
	errs := enum(spec.Child("type"), s.Spec.Type, corev1.ServiceTypeClusterIP, corev1.ServiceTypeNodePort, corev1.ServiceTypeLoadBalancer, corev1.ServiceTypeExternalName)
	for i, p := range s.Spec.Ports {
		errs = append(errs, enum(spec.Child("ports").Index(i).Child("protocol"), p.Protocol, corev1.ProtocolTCP, corev1.ProtocolUDP, corev1.ProtocolSCTP)...)
	}
	return errs
}

// networkPolicyEnums checks the policy types, the ports' protocols and that
// every label selector is one the API server accepts.
func networkPolicyEnums(p *networkingv1.NetworkPolicy) field.ErrorList {
	spec := field.NewPath("spec")
	var errs field.ErrorList
	for i, t := range p.Spec.PolicyTypes {
		errs = append(errs, enum(spec.Child("policyTypes").Index(i), t, networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress)...)
	}
	selector := func(path *field.Path, s *metav1.LabelSelector) {
		if s == nil {
			return
		}
		if _, err := metav1.LabelSelectorAsSelector(s); err != nil {
			errs = append(errs, field.Invalid(path, s, err.Error()))
		}
	}
	selector(spec.Child("podSelector"), &p.Spec.PodSelector)
	for i, rule := range p.Spec.Ingress {
		path := spec.Child("ingress").Index(i)
		for j, peer := range rule.From {
			selector(path.Child("from").Index(j).Child("podSelector"), peer.PodSelector)
			selector(path.Child("from").Index(j).Child("namespaceSelector"), peer.NamespaceSelector)
		}
		for j, port := range rule.Ports {
			if port.Protocol != nil {
				errs = append(errs, enum(path.Child("ports").Index(j).Child("protocol"), *port.Protocol, corev1.ProtocolTCP, corev1.ProtocolUDP, corev1.ProtocolSCTP)...)
			}
		}
	}
	return errs
}

func secretEnums(s *corev1.Secret) field.ErrorList {
	return enum(field.NewPath("type"), s.Type, corev1.SecretTypeOpaque, corev1.SecretTypeBasicAuth, corev1.SecretTypeTLS, corev1.SecretTypeDockerConfigJson)
}

func statefulSetEnums(s *appsv1.StatefulSet) field.ErrorList {
	spec := field.NewPath("spec")
	errs := enum(spec.Child("podManagementPolicy"), s.Spec.PodManagementPolicy, appsv1.OrderedReadyPodManagement, appsv1.ParallelPodManagement)
	errs = append(errs, enum(spec.Child("updateStrategy", "type"), s.Spec.UpdateStrategy.Type, appsv1.RollingUpdateStatefulSetStrategyType, appsv1.OnDeleteStatefulSetStrategyType)...)
	for i, c := range s.Spec.Template.Spec.Containers {
		path := spec.Child("template", "spec", "containers").Index(i)
		errs = append(errs, enum(path.Child("imagePullPolicy"), c.ImagePullPolicy, corev1.PullAlways, corev1.PullNever, corev1.PullIfNotPresent)...)
		for j, p := range c.Ports {
			errs = append(errs, enum(path.Child("ports").Index(j).Child("protocol"), p.Protocol, corev1.ProtocolTCP, corev1.ProtocolUDP, corev1.ProtocolSCTP)...)
		}
	}
	for i, pvc := range s.Spec.VolumeClaimTemplates {
		for j, m := range pvc.Spec.AccessModes {
			errs = append(errs, enum(spec.Child("volumeClaimTemplates").Index(i).Child("spec", "accessModes").Index(j), m,
				corev1.ReadWriteOnce, corev1.ReadOnlyMany, corev1.ReadWriteMany, corev1.ReadWriteOncePod)...)
		}
	}
	return errs
}

// crd runs the CRD schema of the kind on the object.
func (c *Checker) crd(ctx context.Context, gvk string, doc []byte) field.ErrorList {
	s, ok := c.crds[gvk]
	if !ok {
		return field.ErrorList{field.InternalError(nil, fmt.Errorf("no CRD loaded for %s", gvk))}
	}
	var obj map[string]any
	// Integers stay int64, as the API server decodes them (CEL needs it).
	if err := utiljson.Unmarshal(doc, &obj); err != nil {
		return field.ErrorList{problem(nil, err.Error())}
	}
	return s.check(ctx, obj)
}

// knativeType is what Knative's API types implement.
type knativeType interface {
	SetDefaults(context.Context)
	Validate(context.Context) *apis.FieldError
}

// knative runs the CRD's schema, strict decoding and Knative's own
// defaulting and validation, with the release's feature flags; warnings
// count as errors.
func knative[T any, PT interface {
	*T
	knativeType
}]() func(context.Context, *Checker, string, []byte) field.ErrorList {
	return func(ctx context.Context, c *Checker, gvk string, doc []byte) field.ErrorList {
		obj := PT(new(T))
		if errs := strictInto(doc, obj, nil); len(errs) > 0 {
			return errs
		}
		// The API server's order: Knative's defaulting webhook, then the
		// schema, then Knative's validating webhook.
		ctx = knativeContext(ctx, c.Features)
		obj.SetDefaults(ctx)
		defaulted, err := json.Marshal(obj)
		if err != nil {
			return field.ErrorList{problem(nil, err.Error())}
		}
		errs := c.crd(ctx, gvk, defaulted)
		return append(errs, knativeErrors(obj.Validate(ctx))...)
	}
}

func knativeErrors(fe *apis.FieldError) field.ErrorList {
	var errs field.ErrorList
	for _, level := range []apis.DiagnosticLevel{apis.ErrorLevel, apis.WarningLevel} {
		f := fe.Filter(level)
		if f == nil {
			continue
		}
		wrapped := f.WrappedErrors()
		if len(wrapped) == 0 {
			wrapped = []*apis.FieldError{f}
		}
		for _, e := range wrapped {
			path := "object"
			if len(e.Paths) > 0 {
				path = strings.Join(e.Paths, ", ")
			}
			detail := strings.TrimSpace(e.Message + " " + e.Details)
			if detail == "" {
				detail = e.Error()
			}
			if level == apis.WarningLevel {
				detail = "warning: " + detail
			}
			errs = append(errs, &field.Error{Type: field.ErrorTypeInvalid, Field: path, BadValue: field.OmitValueType{}, Detail: detail})
		}
	}
	return errs
}

// knativeContext is a create, with the release's feature flags (its
// features.yaml, which clima dev honours too).
func knativeContext(ctx context.Context, flags feature.Flags) context.Context {
	return apis.WithinCreate(feature.ToContext(ctx, flags))
}

// rabbit decodes into the operator's Go type, runs its CRD schema (which
// defaults the object), then its admission webhook's ValidateCreate on the
// defaulted object, when it has one; warnings count as errors.
func rabbit[T any](validate func(*T) ([]string, error)) func(context.Context, *Checker, string, []byte) field.ErrorList {
	return func(ctx context.Context, c *Checker, gvk string, doc []byte) field.ErrorList {
		if errs := strictInto(doc, new(T), nil); len(errs) > 0 {
			return errs
		}
		var obj map[string]any
		if err := utiljson.Unmarshal(doc, &obj); err != nil {
			return field.ErrorList{problem(nil, err.Error())}
		}
		s, ok := c.crds[gvk]
		if !ok {
			return field.ErrorList{field.InternalError(nil, fmt.Errorf("no CRD loaded for %s", gvk))}
		}
		errs := s.check(ctx, obj)
		if validate == nil {
			return errs
		}
		defaulted, _ := json.Marshal(obj)
		typed := new(T)
		if err := json.Unmarshal(defaulted, typed); err != nil {
			return append(errs, problem(nil, err.Error()))
		}
		warnings, err := validate(typed)
		if err != nil {
			errs = append(errs, problem(nil, "the operator's ValidateCreate: "+err.Error()))
		}
		for _, w := range warnings {
			errs = append(errs, problem(nil, "the operator's ValidateCreate warns: "+w))
		}
		return errs
	}
}

// webhook calls the topology operator's ValidateCreate on an object.
func webhook[T any, PT interface {
	*T
	runtime.Object
	ValidateCreate(context.Context, runtime.Object) (admission.Warnings, error)
}](obj *T) ([]string, error) {
	return PT(obj).ValidateCreate(context.Background(), PT(obj))
}

// strimziKind decodes strictly into strimzi-go's type (Strimzi's CRDs are
// not in any module here) and checks every enum-typed field against the
// constants Strimzi's types declare.
func strimziKind[T any]() func(context.Context, *Checker, string, []byte) field.ErrorList {
	return func(_ context.Context, c *Checker, _ string, doc []byte) field.ErrorList {
		obj := new(T)
		errs := strictInto(doc, obj, nil)
		if len(errs) == 0 {
			errs = c.checkEnums(obj)
		}
		return errs
	}
}

// kafkaSource applies eventing-kafka-broker's validation at knative-v1.20
// (control-plane/pkg/apis/sources/v1/kafka_validation.go, KafkaSourceSpec.
// Validate, and kafka_defaults.go) to clima's type of the object: that
// module is not served here.
func kafkaSource(ctx context.Context, c *Checker, _ string, doc []byte) field.ErrorList {
	var ks manifest.KafkaSource
	if errs := strictInto(withoutTypeMeta(doc), &ks, nil); len(errs) > 0 {
		return errs
	}
	ctx = knativeContext(ctx, c.Features)
	spec := field.NewPath("spec")
	var errs field.ErrorList
	if len(ks.Spec.Topics) == 0 {
		errs = append(errs, field.Required(spec.Child("topics"), ""))
	}
	if len(ks.Spec.BootstrapServers) == 0 {
		errs = append(errs, field.Required(spec.Child("bootstrapServers"), ""))
	}
	// SetDefaults makes an empty initialOffset latest, ordering ordered.
	errs = append(errs, enum(spec.Child("initialOffset"), ks.Spec.InitialOffset, "earliest", "latest")...)
	errs = append(errs, enum(spec.Child("ordering"), ks.Spec.Ordering, "ordered", "unordered")...)
	// KafkaSourceSpec embeds duckv1.SourceSpec, whose Validate checks the sink.
	return append(errs, knativeErrors(ks.Spec.Sink.Validate(ctx).ViaField("sink").ViaField("spec"))...)
}

// rabbitmqSource applies eventing-rabbitmq's validation at knative-v1.20
// (pkg/apis/sources/v1alpha1/rabbitmq_validation.go) to clima's type.
func rabbitmqSource(_ context.Context, _ *Checker, _ string, doc []byte) field.ErrorList {
	var rs manifest.RabbitmqSource
	if errs := strictInto(withoutTypeMeta(doc), &rs, nil); len(errs) > 0 {
		return errs
	}
	spec := field.NewPath("spec")
	res := spec.Child("rabbitmqResourcesConfig")
	var errs field.ErrorList
	if !rs.Spec.Resources.Predeclared && rs.Spec.Resources.ExchangeName == "" {
		errs = append(errs, field.Required(res.Child("exchangeName"), "the exchange's name must be given when predeclared is false"))
	}
	if rs.Spec.ClusterReference.Name == "" {
		errs = append(errs, field.Required(spec.Child("rabbitmqClusterReference", "name"), ""))
	}
	if p := rs.Spec.Resources.Parallelism; p != nil && (*p < 1 || *p > 1000) {
		errs = append(errs, field.Invalid(res.Child("parallelism"), *p, "must be 1 to 1000"))
	}
	// utils.ValidateResourceRequestsAndLimits
	if _, err := rs.AdapterResources(); err != nil {
		errs = append(errs, problem(nil, err.Error()))
	}
	return errs
}

// withoutTypeMeta drops apiVersion and kind, which clima's own types of
// the sources do not carry.
func withoutTypeMeta(doc []byte) []byte {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(doc, &obj); err != nil {
		return doc
	}
	delete(obj, "apiVersion")
	delete(obj, "kind")
	out, _ := json.Marshal(obj)
	return out
}
