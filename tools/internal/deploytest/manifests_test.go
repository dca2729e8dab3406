package deploytest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"
)

// The shapes below hold only the fields the checks read. yaml.v3 lower-cases
// untagged field names, so every field carries its exact key.

type objectMeta struct {
	Name      string            `yaml:"name"`
	Namespace string            `yaml:"namespace"`
	Labels    map[string]string `yaml:"labels"`
}

type typeMeta struct {
	APIVersion string     `yaml:"apiVersion"`
	Kind       string     `yaml:"kind"`
	Metadata   objectMeta `yaml:"metadata"`
}

// object is one parsed manifest: its header and the node to decode by kind.
type object struct {
	typeMeta
	file string
	node *yaml.Node
}

func (o object) String() string { return fmt.Sprintf("%s/%s (%s)", o.Kind, o.Metadata.Name, o.file) }

type labelSelector struct {
	MatchLabels      map[string]string  `yaml:"matchLabels"`
	MatchExpressions []labelRequirement `yaml:"matchExpressions"`
}

type labelRequirement struct {
	Key      string   `yaml:"key"`
	Operator string   `yaml:"operator"`
	Values   []string `yaml:"values"`
}

func (s labelSelector) empty() bool { return len(s.MatchLabels) == 0 && len(s.MatchExpressions) == 0 }

// selects reports whether the selector matches a pod with these labels, with
// Kubernetes' semantics (an empty selector matches everything).
func (s labelSelector) selects(labels map[string]string) bool {
	for k, v := range s.MatchLabels {
		if labels[k] != v {
			return false
		}
	}
	for _, r := range s.MatchExpressions {
		v, has := labels[r.Key]
		switch r.Operator {
		case "In":
			if !has || !slices.Contains(r.Values, v) {
				return false
			}
		case "NotIn":
			if has && slices.Contains(r.Values, v) {
				return false
			}
		case "Exists":
			if !has {
				return false
			}
		case "DoesNotExist":
			if has {
				return false
			}
		default:
			return false
		}
	}
	return true
}

type deployment struct {
	Metadata objectMeta     `yaml:"metadata"`
	Spec     deploymentSpec `yaml:"spec"`
}

type deploymentSpec struct {
	Replicas *int          `yaml:"replicas"`
	Selector labelSelector `yaml:"selector"`
	Template podTemplate   `yaml:"template"`
}

type podTemplate struct {
	Metadata objectMeta `yaml:"metadata"`
	Spec     podSpec    `yaml:"spec"`
}

type podSpec struct {
	SecurityContext *podSecurityContext `yaml:"securityContext"`
	InitContainers  []container         `yaml:"initContainers"`
	Containers      []container         `yaml:"containers"`
}

type podSecurityContext struct {
	RunAsNonRoot *bool `yaml:"runAsNonRoot"`
	RunAsUser    *int  `yaml:"runAsUser"`
}

type container struct {
	Name            string                    `yaml:"name"`
	Image           string                    `yaml:"image"`
	Ports           []containerPort           `yaml:"ports"`
	Env             []envVar                  `yaml:"env"`
	EnvFrom         []envFromSource           `yaml:"envFrom"`
	LivenessProbe   *probe                    `yaml:"livenessProbe"`
	ReadinessProbe  *probe                    `yaml:"readinessProbe"`
	Resources       resourceRequirements      `yaml:"resources"`
	SecurityContext *containerSecurityContext `yaml:"securityContext"`
}

type containerPort struct {
	Name          string `yaml:"name"`
	ContainerPort int    `yaml:"containerPort"`
}

type envVar struct {
	Name      string        `yaml:"name"`
	Value     *string       `yaml:"value"`
	ValueFrom *envVarSource `yaml:"valueFrom"`
}

type envVarSource struct {
	SecretKeyRef    *keySelector `yaml:"secretKeyRef"`
	ConfigMapKeyRef *keySelector `yaml:"configMapKeyRef"`
}

type keySelector struct {
	Name string `yaml:"name"`
	Key  string `yaml:"key"`
}

type envFromSource struct {
	ConfigMapRef *struct {
		Name string `yaml:"name"`
	} `yaml:"configMapRef"`
	SecretRef *struct {
		Name string `yaml:"name"`
	} `yaml:"secretRef"`
}

type probe struct {
	HTTPGet *struct {
		Path string `yaml:"path"`
		Port string `yaml:"port"`
	} `yaml:"httpGet"`
	TCPSocket map[string]any `yaml:"tcpSocket"`
	Exec      map[string]any `yaml:"exec"`
	GRPC      map[string]any `yaml:"grpc"`
}

func (p *probe) hasHandler() bool {
	return p != nil && (p.HTTPGet != nil || p.TCPSocket != nil || p.Exec != nil || p.GRPC != nil)
}

type resourceRequirements struct {
	Requests map[string]string `yaml:"requests"`
	Limits   map[string]string `yaml:"limits"`
}

type containerSecurityContext struct {
	RunAsNonRoot             *bool `yaml:"runAsNonRoot"`
	RunAsUser                *int  `yaml:"runAsUser"`
	ReadOnlyRootFilesystem   *bool `yaml:"readOnlyRootFilesystem"`
	AllowPrivilegeEscalation *bool `yaml:"allowPrivilegeEscalation"`
}

type podDisruptionBudget struct {
	Metadata objectMeta `yaml:"metadata"`
	Spec     struct {
		Selector       labelSelector `yaml:"selector"`
		MinAvailable   *string       `yaml:"minAvailable"`
		MaxUnavailable *string       `yaml:"maxUnavailable"`
	} `yaml:"spec"`
}

type scaledObject struct {
	Metadata objectMeta `yaml:"metadata"`
	Spec     struct {
		ScaleTargetRef struct {
			Kind string `yaml:"kind"`
			Name string `yaml:"name"`
		} `yaml:"scaleTargetRef"`
		MinReplicaCount *int            `yaml:"minReplicaCount"`
		MaxReplicaCount *int            `yaml:"maxReplicaCount"`
		Triggers        []scaledTrigger `yaml:"triggers"`
	} `yaml:"spec"`
}

type scaledTrigger struct {
	Type     string            `yaml:"type"`
	Metadata map[string]string `yaml:"metadata"`
}

type networkPolicy struct {
	Metadata objectMeta `yaml:"metadata"`
	Spec     struct {
		PodSelector labelSelector       `yaml:"podSelector"`
		PolicyTypes []string            `yaml:"policyTypes"`
		Ingress     []networkPolicyRule `yaml:"ingress"`
		Egress      []networkPolicyRule `yaml:"egress"`
	} `yaml:"spec"`
}

// networkPolicyRule is an ingress or an egress rule; peers are not judged.
type networkPolicyRule struct {
	Ports []struct {
		Protocol string `yaml:"protocol"`
		Port     string `yaml:"port"`
	} `yaml:"ports"`
}

// allowsPort reports whether the rule lets TCP traffic to port through (a
// rule without ports allows every port).
func (r networkPolicyRule) allowsPort(port string) bool {
	if len(r.Ports) == 0 {
		return true
	}
	for _, p := range r.Ports {
		if (p.Protocol == "" || p.Protocol == "TCP") && p.Port == port {
			return true
		}
	}
	return false
}

type configMap struct {
	Metadata objectMeta        `yaml:"metadata"`
	Data     map[string]string `yaml:"data"`
}

type secret struct {
	Metadata   objectMeta        `yaml:"metadata"`
	Data       map[string]string `yaml:"data"`
	StringData map[string]string `yaml:"stringData"`
}

type kustomization struct {
	Resources             []string `yaml:"resources"`
	Components            []string `yaml:"components"`
	PatchesStrategicMerge []string `yaml:"patchesStrategicMerge"`
	Patches               []struct {
		Path string `yaml:"path"`
	} `yaml:"patches"`
	Images []kustomizeImage `yaml:"images"`
}

type kustomizeImage struct {
	Name    string `yaml:"name"`
	NewName string `yaml:"newName"`
	NewTag  string `yaml:"newTag"`
	Digest  string `yaml:"digest"`
}

// repoRoot walks up from the working directory to the directory holding go.work.
func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	require.NoError(t, err)
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.work above the working directory")
		}
		dir = parent
	}
}

// decodeDocuments splits a multi-document YAML stream, skipping empty documents.
func decodeDocuments(data []byte) ([]*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var docs []*yaml.Node
	for {
		var doc yaml.Node
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, fmt.Errorf("document %d: %w", len(docs)+1, err)
		}
		if len(doc.Content) == 0 || doc.Content[0].Tag == "!!null" {
			continue
		}
		docs = append(docs, &doc)
	}
}

func readDocuments(t *testing.T, path string) []*yaml.Node {
	t.Helper()
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	docs, err := decodeDocuments(data)
	require.NoError(t, err, "parse %s", path)
	return docs
}

// parseObjects reads Kubernetes manifests from a multi-document stream.
func parseObjects(data []byte, file string) ([]object, error) {
	docs, err := decodeDocuments(data)
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", file, err)
	}
	objects := make([]object, 0, len(docs))
	for i, doc := range docs {
		var tm typeMeta
		if err := doc.Decode(&tm); err != nil {
			return nil, fmt.Errorf("parse %s document %d: %w", file, i+1, err)
		}
		objects = append(objects, object{typeMeta: tm, file: file, node: doc})
	}
	return objects, nil
}

func readKustomization(t *testing.T, dir string) kustomization {
	t.Helper()
	docs := readDocuments(t, filepath.Join(dir, "kustomization.yaml"))
	require.Len(t, docs, 1, "kustomization in %s", dir)
	var k kustomization
	require.NoError(t, docs[0].Decode(&k))
	return k
}

// baseObjects parses the files the base kustomization lists, so a file left
// out of resources counts as missing.
func baseObjects(t *testing.T, baseDir string) []object {
	t.Helper()
	var objects []object
	for _, res := range readKustomization(t, baseDir).Resources {
		path := filepath.Join(baseDir, res)
		data, err := os.ReadFile(path)
		require.NoError(t, err, "base resource %s must be a file in base", res)
		objs, err := parseObjects(data, filepath.Join("base", res))
		require.NoError(t, err)
		objects = append(objects, objs...)
	}
	return objects
}

// requireNoProblems reports every problem on a line of its own, then stops.
func requireNoProblems(t *testing.T, got []string) {
	t.Helper()
	for _, p := range got {
		t.Error(p)
	}
	if len(got) > 0 {
		t.FailNow()
	}
}
