package deploytest

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// The tests in this file break the real deployment files in memory, one
// property at a time, and require the checks to notice. They keep the checks
// honest: a check that cannot fail would pass here by accident only if the
// mutation did nothing, and mustReplace rules that out.

// mustReplace replaces every occurrence of old, which must occur.
func mustReplace(t *testing.T, text, old, replacement string) string {
	t.Helper()
	require.Contains(t, text, old, "mutation target not found; the file changed, update the test")
	return strings.ReplaceAll(text, old, replacement)
}

func requireProblem(t *testing.T, got []string, want string) {
	t.Helper()
	require.True(t, slices.ContainsFunc(got, func(p string) bool { return strings.Contains(p, want) }),
		"want a problem mentioning %q, got %q", want, got)
}

func readText(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	return string(data)
}

func allBaseProblems(objects []object) []string {
	return slices.Concat(
		deploymentSetProblems(objects),
		pdbSetProblems(objects),
		scaledObjectSetProblems(objects),
		networkPolicySetProblems(objects),
		secretValueProblems(objects),
	)
}

// baseObjectsWith parses the base with one file's text edited.
func baseObjectsWith(t *testing.T, baseDir, file, old, replacement string) []object {
	t.Helper()
	var objects []object
	for _, res := range readKustomization(t, baseDir).Resources {
		text := readText(t, filepath.Join(baseDir, res))
		if res == file {
			text = mustReplace(t, text, old, replacement)
		}
		objs, err := parseObjects([]byte(text), res)
		require.NoError(t, err)
		objects = append(objects, objs...)
	}
	return objects
}

func TestBaseChecksCatchBrokenManifests(t *testing.T) {
	baseDir := filepath.Join(repoRoot(t), "deploy", "k8s", "base")
	requireNoProblems(t, allBaseProblems(baseObjects(t, baseDir)))

	neo4jByRef := "            - name: NEO4J_PASSWORD\n              valueFrom:\n                secretKeyRef:\n" +
		"                  name: kgraph-secrets\n                  key: neo4j-password\n"
	tests := []struct {
		name, file, old, replacement, want string
	}{
		{"deployment removed", "projection.yaml", "kind: Deployment", "kind: StatefulSet", "no Deployment projection"},
		{"liveness probe removed", "query.yaml", "livenessProbe:", "removedProbe:", "query/query: no liveness probe"},
		{"readiness probe removed", "dedup.yaml", "readinessProbe:", "removedProbe:", "dedup/dedup: no readiness probe"},
		{"requests removed", "extractor.yaml", "requests:", "removed:", "no cpu request"},
		{"memory limit removed", "extractor.yaml", "memory: 128Mi", "", "no memory limit"},
		{"runs as root", "graph-writer.yaml", "runAsNonRoot: true", "runAsNonRoot: false", "runAsNonRoot is not true"},
		{"writable root filesystem", "vector-indexer.yaml", "readOnlyRootFilesystem: true", "readOnlyRootFilesystem: false", "readOnlyRootFilesystem"},
		{"privilege escalation", "vector-indexer.yaml", "allowPrivilegeEscalation: false", "allowPrivilegeEscalation: true", "allowPrivilegeEscalation"},
		{"inline secret value", "graph-writer.yaml", neo4jByRef, "            - name: NEO4J_PASSWORD\n              value: hunter2\n", "env NEO4J_PASSWORD has an inline value"},
		{"secret from a config map", "query.yaml", "secretKeyRef:\n                  name: kgraph-secrets\n                  key: llm-api-key",
			"configMapKeyRef:\n                  name: kgraph-config\n                  key: llm-api-key", "env KG_LLM_API_KEY does not come from valueFrom.secretKeyRef"},
		{"secret in the config map", "configmap.yaml", "  KG_LLM_MODEL: \"\"", "  KG_LLM_MODEL: \"\"\n  KG_LLM_API_KEY: sk-live", "secrets belong in a Secret"},
		{"part-of label wrong", "dedup.yaml", "app.kubernetes.io/part-of: kgraph", "app.kubernetes.io/part-of: other", "part-of"},
		{"PDB removed", "ingest-api.yaml", "kind: PodDisruptionBudget", "kind: ConfigMap", "no PodDisruptionBudget ingest-api"},
		{"PDB selects nothing", "dedup.yaml", "  maxUnavailable: 1\n  selector:\n    matchLabels:\n      app.kubernetes.io/name: dedup",
			"  maxUnavailable: 1\n  selector:\n    matchLabels:\n      app.kubernetes.io/name: dedupe", "does not select the pods of Deployment dedup"},
		{"ScaledObject removed", "scaledobjects.yaml", "name: vector-indexer\n  pollingInterval", "name: indexer\n  pollingInterval", "no ScaledObject targets vector-indexer"},
		{"wrong scaler", "scaledobjects.yaml", "type: nats-jetstream", "type: prometheus", "no nats-jetstream trigger"},
		{"wrong consumer", "scaledobjects.yaml", "consumer: extractor-chunks", "consumer: extractor", `trigger consumer is "extractor", want "extractor-chunks"`},
		{"wrong stream", "scaledobjects.yaml", "stream: EVENTS", "stream: events", "trigger stream"},
		{"scale to zero", "scaledobjects.yaml", "minReplicaCount: 1", "minReplicaCount: 0", "minReplicaCount must be at least 1"},
		{"replicas fight KEDA", "extractor.yaml", "  revisionHistoryLimit: 5", "  replicas: 2\n  revisionHistoryLimit: 5", "Deployment extractor sets replicas"},
		{"default deny removed", "networkpolicies.yaml", "  podSelector: {}", "  podSelector:\n    matchLabels:\n      app.kubernetes.io/name: ingest-api", "no default-deny"},
		{"NATS egress removed", "networkpolicies.yaml", "port: 4222", "port: 4223", "reach NATS on 4222"},
		{"DNS egress removed", "networkpolicies.yaml", "port: 53", "port: 5353", "resolve DNS"},
		{"edge ingress removed", "networkpolicies.yaml", "port: 8080", "port: 8081", "into ingest-api on 8080"},
		{"ingress opened to a worker", "networkpolicies.yaml", "      app.kubernetes.io/name: ingest-api\n      app.kubernetes.io/part-of: kgraph\n  policyTypes: [Ingress]",
			"      app.kubernetes.io/part-of: kgraph\n  policyTypes: [Ingress]", "into dedup on 8080"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			requireProblem(t, allBaseProblems(baseObjectsWith(t, baseDir, tt.file, tt.old, tt.replacement)), tt.want)
		})
	}
}

func TestComposeChecksCatchBrokenStack(t *testing.T) {
	root := repoRoot(t)
	composeDir := filepath.Join(root, "deploy", "compose")
	original := readText(t, filepath.Join(composeDir, "compose.yaml"))
	check := func(text string) []string {
		docs, err := decodeDocuments([]byte(text))
		require.NoError(t, err)
		require.Len(t, docs, 1)
		var c composeFile
		require.NoError(t, docs[0].Decode(&c))
		return composeProblems(c, composeDir, root)
	}
	requireNoProblems(t, check(original))

	tests := []struct {
		name, old, replacement, want string
	}{
		{"backend removed", "  redis:\n    image:", "  cache:\n    image:", "compose has no service redis"},
		{"service removed", "  projection:\n", "  projector:\n", "compose has no service projection"},
		{"worker healthcheck removed", "  healthcheck: &worker-healthcheck", "  x-healthcheck: &worker-healthcheck", "dedup has no healthcheck"},
		{"backend healthcheck removed", "    healthcheck:\n      # The image ships", "    x-healthcheck:\n      # The image ships", "qdrant has no healthcheck"},
		{"nats only started, not healthy", "condition: service_healthy", "condition: service_started", "does not depend on nats being healthy"},
		{"nats dependency dropped", "    depends_on:\n      nats:\n        condition: service_healthy\n      neo4j:",
			"    depends_on:\n      neo4j:", "graph-writer does not depend on nats"},
		{"literal secret", "KG_LLM_API_KEY: ${KG_LLM_API_KEY:-}", "KG_LLM_API_KEY: sk-live-123", "KG_LLM_API_KEY is a literal"},
		{"wrong SERVICE build arg", "SERVICE: graph-writer", "SERVICE: query", "graph-writer: build arg SERVICE"},
		{"wrong build context", "context: ../..", "context: ..", "is not the repository root"},
		{"data volume not at KG_DATA_DIR", "- kgraph-data:/var/lib/kgraph", "- kgraph-data:/data", "does not mount a named volume at KG_DATA_DIR"},
		{"no restart", "  restart: unless-stopped\n  read_only", "  restart: \"no\"\n  read_only", "restart policy"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			requireProblem(t, check(mustReplace(t, original, tt.old, tt.replacement)), tt.want)
		})
	}
}

func TestNATSConfChecksCatchLostDurability(t *testing.T) {
	original := readText(t, filepath.Join(repoRoot(t), "deploy", "compose", "nats.conf"))
	requireNoProblems(t, natsConfProblems(original))

	tests := []struct {
		name, old, replacement, want string
	}{
		{"default interval", "sync_interval: always", "sync_interval: 2m", "sync_interval: always"},
		{"commented out", "sync_interval: always", "# sync_interval: always", "sync_interval: always"},
		{"outside the jetstream block", "  sync_interval: always\n", "", "sync_interval: always"},
		{"no jetstream", "jetstream {", "leafnodes {", "no jetstream"},
		{"no monitoring", "http: 0.0.0.0:8222", "", "monitoring"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			requireProblem(t, natsConfProblems(mustReplace(t, original, tt.old, tt.replacement)), tt.want)
		})
	}
	// Moved to the top level, it does not configure JetStream's file store.
	moved := "sync_interval: always\n" + mustReplace(t, original, "  sync_interval: always\n", "")
	requireProblem(t, natsConfProblems(moved), "sync_interval: always")
}

func TestDockerfileChecksCatchBrokenImage(t *testing.T) {
	original := readText(t, filepath.Join(repoRoot(t), "Dockerfile"))
	requireNoProblems(t, dockerfileProblems(original))

	tests := []struct {
		name, old, replacement, want string
	}{
		{"no SERVICE arg", "ARG SERVICE\n", "", "no ARG SERVICE"},
		{"cgo on", "CGO_ENABLED=0", "CGO_ENABLED=1", "CGO_ENABLED=0"},
		{"root user", "USER 65532:65532", "USER root", `USER is "root"`},
		{"uid 0", "USER 65532:65532", "USER 0:0", `USER is "0:0"`},
		{"user by name", "USER 65532:65532", "USER nonroot", "numeric non-root uid"},
		{"user commented out", "USER 65532:65532", "# USER 65532:65532", `USER is ""`},
		{"full OS image", "FROM gcr.io/distroless/static-debian12:nonroot", "FROM debian:bookworm", "want distroless or scratch"},
		{"no entrypoint", `ENTRYPOINT ["/usr/local/bin/kgraph-service"]`, "", "no ENTRYPOINT"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			requireProblem(t, dockerfileProblems(mustReplace(t, original, tt.old, tt.replacement)), tt.want)
		})
	}
}

func TestKustomizationChecksCatchMissingFiles(t *testing.T) {
	baseDir := filepath.Join(repoRoot(t), "deploy", "k8s", "base")
	exists := func(path string) (bool, bool) {
		info, err := os.Stat(path)
		return err == nil && info.IsDir(), err == nil
	}
	k := readKustomization(t, baseDir)
	requireNoProblems(t, kustomizationProblems(baseDir, k, exists))

	tests := []struct {
		name, resource, want string
	}{
		{"missing file", "hpa.yaml", "hpa.yaml does not exist"},
		{"directory without kustomization", "../../compose", "holds no kustomization.yaml"},
		{"remote resource", "https://example.com/x.yaml", "remote resource"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			broken := k
			broken.Resources = append(slices.Clone(k.Resources), tt.resource)
			requireProblem(t, kustomizationProblems(baseDir, broken, exists), tt.want)
		})
	}
}

func TestOverlayImageChecksCatchUnpinnedImages(t *testing.T) {
	k8s := filepath.Join(repoRoot(t), "deploy", "k8s")
	images := []string{"ghcr.io/kgraph-dev/kgraph/query", "ghcr.io/kgraph-dev/kgraph/dedup"}
	k := readKustomization(t, filepath.Join(k8s, "overlays", "prod"))
	requireNoProblems(t, overlayImageProblems("prod", k, images))

	tests := []struct {
		name   string
		mutate func(images []kustomizeImage) []kustomizeImage
		want   string
	}{
		{"image dropped", func(imgs []kustomizeImage) []kustomizeImage {
			return slices.DeleteFunc(imgs, func(i kustomizeImage) bool { return strings.HasSuffix(i.Name, "/query") })
		}, "does not set the image ghcr.io/kgraph-dev/kgraph/query"},
		{"no tag", func(imgs []kustomizeImage) []kustomizeImage {
			for i := range imgs {
				imgs[i].NewTag = ""
			}
			return imgs
		}, "neither a tag nor a digest"},
		{"latest", func(imgs []kustomizeImage) []kustomizeImage {
			for i := range imgs {
				imgs[i].NewTag = "latest"
			}
			return imgs
		}, "as latest"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			broken := k
			broken.Images = tt.mutate(slices.Clone(k.Images))
			requireProblem(t, overlayImageProblems("prod", broken, images), tt.want)
		})
	}
}

func TestStaticcheckChecksCatchChangedList(t *testing.T) {
	original := readText(t, filepath.Join(repoRoot(t), "staticcheck.conf"))
	requireProblem(t, staticcheckProblems(mustReplace(t, original, `, "-ST1003"`, "")), "want")
	requireProblem(t, staticcheckProblems(mustReplace(t, original, "checks", "# checks")), "no checks")
}

func TestLabelSelectorSemantics(t *testing.T) {
	pod := map[string]string{labelName: "query", labelPartOf: partOf}
	tests := []struct {
		name string
		sel  labelSelector
		want bool
	}{
		{"empty selects all", labelSelector{}, true},
		{"match", labelSelector{MatchLabels: map[string]string{labelName: "query"}}, true},
		{"mismatch", labelSelector{MatchLabels: map[string]string{labelName: "dedup"}}, false},
		{"missing label", labelSelector{MatchLabels: map[string]string{"tier": "x"}}, false},
		{"In", labelSelector{MatchExpressions: []labelRequirement{{labelName, "In", []string{"dedup", "query"}}}}, true},
		{"not In", labelSelector{MatchExpressions: []labelRequirement{{labelName, "In", []string{"dedup"}}}}, false},
		{"NotIn", labelSelector{MatchExpressions: []labelRequirement{{labelName, "NotIn", []string{"query"}}}}, false},
		{"Exists", labelSelector{MatchExpressions: []labelRequirement{{labelPartOf, "Exists", nil}}}, true},
		{"DoesNotExist", labelSelector{MatchExpressions: []labelRequirement{{labelPartOf, "DoesNotExist", nil}}}, false},
		{"unknown operator", labelSelector{MatchExpressions: []labelRequirement{{labelName, "Like", []string{"q"}}}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, tt.sel.selects(pod))
		})
	}
}

func TestImageReferences(t *testing.T) {
	tests := []struct {
		ref, name string
		pinned    bool
	}{
		{"ghcr.io/kgraph-dev/kgraph/query", "ghcr.io/kgraph-dev/kgraph/query", false},
		{"ghcr.io/kgraph-dev/kgraph/query:0.1.0", "ghcr.io/kgraph-dev/kgraph/query", true},
		{"ghcr.io/kgraph-dev/kgraph/query:latest", "ghcr.io/kgraph-dev/kgraph/query", false},
		{"localhost:5000/query", "localhost:5000/query", false},
		{"localhost:5000/query:dev", "localhost:5000/query", true},
		{"ghcr.io/kgraph-dev/kgraph/query@sha256:abc", "ghcr.io/kgraph-dev/kgraph/query", true},
	}
	for _, tt := range tests {
		t.Run(tt.ref, func(t *testing.T) {
			require.Equal(t, tt.name, imageName(tt.ref))
			require.Equal(t, tt.pinned, pinnedImage(tt.ref))
		})
	}
}

func TestVersionAtLeast(t *testing.T) {
	tests := []struct {
		tag  string
		want bool
	}{
		{"2.11", true},
		{"2.11.3-alpine", true},
		{"2.15.2-alpine", true},
		{"3.0", true},
		{"2.10.22-alpine", false},
		{"1.99", false},
		{"alpine", false},
		{"", false},
	}
	for _, tt := range tests {
		t.Run(tt.tag, func(t *testing.T) {
			require.Equal(t, tt.want, versionAtLeast(tt.tag, 2, 11))
		})
	}
}
