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
	"k8s.io/apimachinery/pkg/runtime"
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
}

// kinds names a check for every kind the manifests use; an object of any
// other kind fails until one is named here.
var kinds = map[string]kind{
	"v1 Namespace":        {"k8s.io/api strict decoding", false, core[corev1.Namespace](nil)},
	"v1 ConfigMap":        {"k8s.io/api strict decoding", true, core[corev1.ConfigMap](nil)},
	"v1 Secret":           {"k8s.io/api strict decoding + core enums", true, core(secretEnums)},
	"v1 Service":          {"k8s.io/api strict decoding + core enums", true, core(serviceEnums)},
	"apps/v1 StatefulSet": {"k8s.io/api strict decoding + core enums", true, core(statefulSetEnums)},

	"serving.knative.dev/v1 Service":  {"Knative CRD schema + serving types + SetDefaults/Validate", true, knative[servingv1.Service]()},
	"eventing.knative.dev/v1 Broker":  {"Knative CRD schema + eventing types + SetDefaults/Validate", true, knative[eventingv1.Broker]()},
	"eventing.knative.dev/v1 Trigger": {"Knative CRD schema + eventing types + SetDefaults/Validate", true, knative[eventingv1.Trigger]()},

	"rabbitmq.com/v1beta1 RabbitmqCluster": {"cluster-operator CRD schema + types", true, rabbit[cluster.RabbitmqCluster](nil)},
	"rabbitmq.com/v1beta1 Queue":           {"topology-operator CRD schema + ValidateCreate", true, rabbit(webhook[topology.Queue])},
	"rabbitmq.com/v1beta1 Exchange":        {"topology-operator CRD schema + ValidateCreate", true, rabbit(webhook[topology.Exchange])},
	"rabbitmq.com/v1beta1 Binding":         {"topology-operator CRD schema + ValidateCreate", true, rabbit(webhook[topology.Binding])},
	"rabbitmq.com/v1beta1 User":            {"topology-operator CRD schema + ValidateCreate", true, rabbit(webhook[topology.User])},
	"rabbitmq.com/v1beta1 Permission":      {"topology-operator CRD schema + ValidateCreate", true, rabbit(webhook[topology.Permission])},
	"rabbitmq.com/v1beta1 Policy":          {"topology-operator CRD schema + ValidateCreate", true, rabbit(webhook[topology.Policy])},

	"kafka.strimzi.io/v1beta2 Kafka":         {"strimzi-go strict decoding + Strimzi enums", true, strimziKind[strimzi.Kafka]()},
	"kafka.strimzi.io/v1beta2 KafkaNodePool": {"strimzi-go strict decoding + Strimzi enums", true, strimziKind[strimzi.KafkaNodePool]()},
	"kafka.strimzi.io/v1beta2 KafkaTopic":    {"strimzi-go strict decoding + Strimzi enums", true, strimziKind[strimzi.KafkaTopic]()},

	"sources.knative.dev/v1 KafkaSource":          {"clima's KafkaSource type + eventing-kafka-broker's rules + duck Destination", true, kafkaSource},
	"sources.knative.dev/v1alpha1 RabbitmqSource": {"clima's RabbitmqSource type + eventing-rabbitmq's rules + duck Destination", true, rabbitmqSource},
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
	if err := json.Unmarshal(doc, &obj); err != nil {
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
		errs := c.crd(ctx, gvk, doc)
		obj := PT(new(T))
		if decodeErrs := strictInto(doc, obj, nil); len(decodeErrs) > 0 {
			return append(errs, decodeErrs...)
		}
		ctx = feature.ToContext(ctx, feature.FromContextOrDefaults(ctx))
		ctx = apis.WithinCreate(ctx)
		obj.SetDefaults(ctx)
		return append(errs, knativeErrors(obj.Validate(ctx))...)
	}
}

func knativeErrors(fe *apis.FieldError) field.ErrorList {
	var errs field.ErrorList
	for _, level := range []apis.DiagnosticLevel{apis.ErrorLevel, apis.WarningLevel} {
		for _, e := range fe.Filter(level).WrappedErrors() {
			errs = append(errs, problem(field.NewPath(e.Paths[0]), strings.TrimSpace(e.Message+" "+e.Details)))
		}
		if f := fe.Filter(level); f != nil && len(f.WrappedErrors()) == 0 && f.Message != "" {
			errs = append(errs, problem(field.NewPath(f.Paths[0]), strings.TrimSpace(f.Message+" "+f.Details)))
		}
	}
	return errs
}

// rabbit runs the operator's CRD schema, then decodes into its Go type and
// runs its admission webhook's ValidateCreate, when it has one.
func rabbit[T any](validate func(*T) error) func(context.Context, *Checker, string, []byte) field.ErrorList {
	return func(ctx context.Context, c *Checker, gvk string, doc []byte) field.ErrorList {
		errs := c.crd(ctx, gvk, doc)
		obj := new(T)
		if decodeErrs := strictInto(doc, obj, nil); len(decodeErrs) > 0 {
			return append(errs, decodeErrs...)
		}
		if validate != nil {
			if err := validate(obj); err != nil {
				errs = append(errs, problem(nil, "the operator's ValidateCreate: "+err.Error()))
			}
		}
		return errs
	}
}

// webhook calls the topology operator's ValidateCreate on an object.
func webhook[T any, PT interface {
	*T
	runtime.Object
	ValidateCreate(context.Context, runtime.Object) (admission.Warnings, error)
}](obj *T) error {
	_, err := PT(obj).ValidateCreate(context.Background(), PT(obj))
	return err
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

// kafkaSource applies eventing-kafka-broker's validation
// (control-plane/pkg/apis/sources/v1/kafka_validation.go, KafkaSourceSpec.
// Validate) to clima's type of the object: that module is not served here.
func kafkaSource(ctx context.Context, _ *Checker, _ string, doc []byte) field.ErrorList {
	var ks manifest.KafkaSource
	if errs := strictInto(withoutTypeMeta(doc), &ks, nil); len(errs) > 0 {
		return errs
	}
	spec := field.NewPath("spec")
	var errs field.ErrorList
	if len(ks.Spec.Topics) == 0 {
		errs = append(errs, field.Required(spec.Child("topics"), ""))
	}
	if len(ks.Spec.BootstrapServers) == 0 {
		errs = append(errs, field.Required(spec.Child("bootstrapServers"), ""))
	}
	// Defaults (kafka_defaults.go): initialOffset latest, ordering ordered.
	errs = append(errs, enum(spec.Child("initialOffset"), ks.Spec.InitialOffset, "earliest", "latest")...)
	errs = append(errs, enum(spec.Child("ordering"), ks.Spec.Ordering, "ordered", "unordered")...)
	if ks.Spec.Consumers != nil && *ks.Spec.Consumers < 1 {
		errs = append(errs, field.Invalid(spec.Child("consumers"), *ks.Spec.Consumers, "must be at least 1"))
	}
	errs = append(errs, knativeErrors(ks.Spec.Sink.Validate(ctx).ViaField("sink").ViaField("spec"))...)
	if ks.Spec.Delivery != nil {
		errs = append(errs, knativeErrors(ks.Spec.Delivery.Validate(ctx).ViaField("delivery").ViaField("spec"))...)
	}
	return errs
}

// rabbitmqSource applies eventing-rabbitmq's validation
// (pkg/apis/sources/v1alpha1/rabbitmq_validation.go) to clima's type.
func rabbitmqSource(ctx context.Context, _ *Checker, _ string, doc []byte) field.ErrorList {
	var rs manifest.RabbitmqSource
	if errs := strictInto(withoutTypeMeta(doc), &rs, nil); len(errs) > 0 {
		return errs
	}
	spec := field.NewPath("spec")
	res := spec.Child("rabbitmqResourcesConfig")
	var errs field.ErrorList
	if rs.Spec.Resources.QueueName == "" {
		errs = append(errs, field.Required(res.Child("queueName"), ""))
	}
	if !rs.Spec.Resources.Predeclared && rs.Spec.Resources.ExchangeName == "" {
		errs = append(errs, field.Required(res.Child("exchangeName"), "the exchange's name must be given when predeclared is false"))
	}
	if rs.Spec.ClusterReference.Name == "" {
		errs = append(errs, field.Required(spec.Child("rabbitmqClusterReference", "name"), ""))
	}
	if p := rs.Spec.Resources.Parallelism; p != nil && (*p < 1 || *p > 1000) {
		errs = append(errs, field.Invalid(res.Child("parallelism"), *p, "must be 1 to 1000"))
	}
	errs = append(errs, knativeErrors(rs.Spec.Sink.Validate(ctx).ViaField("sink").ViaField("spec"))...)
	if rs.Spec.Delivery != nil {
		if rs.Spec.Delivery.DeadLetterSink != nil {
			errs = append(errs, field.Forbidden(spec.Child("delivery", "deadLetterSink"), "the RabbitmqSource has no dead-letter sink: use the queue's dead-letter exchange"))
		}
		errs = append(errs, knativeErrors(rs.Spec.Delivery.Validate(ctx).ViaField("delivery").ViaField("spec"))...)
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
