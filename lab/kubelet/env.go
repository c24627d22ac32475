package kubelet

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// environment builds the child's environment (see the package doc for the
// layering) and returns it as a map for $(VAR) expansion plus the list of
// env sources the lab could not provide.
func environment(pod *corev1.Pod, c *corev1.Container, ip string, port int) (map[string]string, []string) {
	env := map[string]string{}
	for _, kv := range os.Environ() {
		if k, v, ok := strings.Cut(kv, "="); ok {
			env[k] = v
		}
	}
	var missing []string
	for _, ef := range c.EnvFrom {
		missing = append(missing, fmt.Sprintf("envFrom %s: not available in the lab; left unset", envFromName(ef)))
	}
	// Container env overlays the host's; each value may refer to variables
	// defined before it, as in Kubernetes.
	defined := map[string]string{}
	for _, e := range c.Env {
		if e.ValueFrom == nil {
			defined[e.Name] = expand(e.Value, defined)
			continue
		}
		v, ok := fieldValue(pod, e.ValueFrom, ip)
		if !ok {
			missing = append(missing, fmt.Sprintf("env %s: %s not available in the lab; left unset", e.Name, valueFromKind(e.ValueFrom)))
			continue
		}
		defined[e.Name] = v
	}
	for k, v := range defined {
		env[k] = v
	}
	// The lab's own variables win: the lab, not the manifest, chose them.
	env["PORT"] = strconv.Itoa(port)
	env["POD_IP"] = ip
	env["POD_NAME"] = pod.Name
	env["POD_NAMESPACE"] = namespace(pod)
	return env, missing
}

func envList(env map[string]string) []string {
	out := make([]string, 0, len(env))
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	return out
}

func namespace(pod *corev1.Pod) string {
	if pod.Namespace == "" {
		return "default"
	}
	return pod.Namespace
}

// fieldValue resolves the downward-API fields a lab pod has.
func fieldValue(pod *corev1.Pod, src *corev1.EnvVarSource, ip string) (string, bool) {
	if src.FieldRef == nil {
		return "", false
	}
	path := src.FieldRef.FieldPath
	switch path {
	case "metadata.name":
		return pod.Name, true
	case "metadata.namespace":
		return namespace(pod), true
	case "metadata.uid":
		return string(pod.UID), true
	case "status.podIP", "status.podIPs":
		return ip, true
	case "status.hostIP", "status.hostIPs":
		return hostIP, true
	case "spec.nodeName":
		return nodeName, true
	case "spec.serviceAccountName":
		return pod.Spec.ServiceAccountName, true
	}
	for prefix, m := range map[string]map[string]string{"metadata.labels": pod.Labels, "metadata.annotations": pod.Annotations} {
		if key, ok := strings.CutPrefix(path, prefix+"['"); ok {
			if key, ok = strings.CutSuffix(key, "']"); ok {
				return m[key], true
			}
		}
	}
	return "", false
}

func valueFromKind(src *corev1.EnvVarSource) string {
	switch {
	case src.FieldRef != nil:
		return "fieldRef " + src.FieldRef.FieldPath
	case src.SecretKeyRef != nil:
		return "secretKeyRef"
	case src.ConfigMapKeyRef != nil:
		return "configMapKeyRef"
	case src.ResourceFieldRef != nil:
		return "resourceFieldRef"
	}
	return "valueFrom"
}

func envFromName(ef corev1.EnvFromSource) string {
	switch {
	case ef.SecretRef != nil:
		return "secret " + ef.SecretRef.Name
	case ef.ConfigMapRef != nil:
		return "configMap " + ef.ConfigMapRef.Name
	}
	return "source"
}

// expand replaces $(VAR) with VAR's value when VAR is defined, turns $$ into
// a literal $, and leaves anything else as written: the rules Kubernetes
// applies to command, args and env values.
func expand(s string, env map[string]string) string {
	if !strings.Contains(s, "$") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 >= len(s) {
			b.WriteByte(s[i])
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i++
		case '(':
			end := strings.IndexByte(s[i+2:], ')')
			if end < 0 {
				b.WriteString(s[i:])
				return b.String()
			}
			name := s[i+2 : i+2+end]
			if v, ok := env[name]; ok {
				b.WriteString(v)
			} else {
				b.WriteString(s[i : i+3+end])
			}
			i += 2 + end
		default:
			b.WriteByte('$')
		}
	}
	return b.String()
}

// commandLine is the container's command and args, expanded; override (the
// lab's --app) replaces both.
func commandLine(c *corev1.Container, override []string, env map[string]string) []string {
	if len(override) > 0 {
		return override
	}
	var argv []string
	for _, a := range append(append([]string(nil), c.Command...), c.Args...) {
		argv = append(argv, expand(a, env))
	}
	return argv
}
