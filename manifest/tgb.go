package manifest

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// TargetGroupBinding is the AWS Load Balancer Controller's CRD
// (elbv2.k8s.aws) that binds a Service to a target group, made by the
// controller for each Ingress backend or by hand for a target group created
// outside Kubernetes. Only the fields rollsafe reads are declared: the
// controller's Go module is not a dependency worth taking for five fields.
type TargetGroupBinding struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              TargetGroupBindingSpec `json:"spec"`
}

// TargetGroupBindingSpec is the part of the spec rollsafe reads.
type TargetGroupBindingSpec struct {
	TargetGroupARN  string `json:"targetGroupARN,omitempty"`
	TargetGroupName string `json:"targetGroupName,omitempty"`
	// TargetType is "ip" or "instance"; nil means the controller infers it
	// from the target group, which manifests cannot show.
	TargetType *string          `json:"targetType,omitempty"`
	ServiceRef ServiceReference `json:"serviceRef"`
}

// ServiceReference names the Service and port a TargetGroupBinding routes to.
type ServiceReference struct {
	Name string             `json:"name"`
	Port intstr.IntOrString `json:"port"`
}

// DeepCopyObject makes TargetGroupBinding a runtime.Object.
func (t *TargetGroupBinding) DeepCopyObject() runtime.Object {
	if t == nil {
		return nil
	}
	out := *t
	t.ObjectMeta.DeepCopyInto(&out.ObjectMeta)
	if t.Spec.TargetType != nil {
		tt := *t.Spec.TargetType
		out.Spec.TargetType = &tt
	}
	return &out
}
