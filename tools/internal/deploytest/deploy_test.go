package deploytest

import (
	"bytes"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestEveryYAMLFileUnderDeployParses(t *testing.T) {
	root := repoRoot(t)
	var files []string
	err := filepath.WalkDir(filepath.Join(root, "deploy"), func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if ext := filepath.Ext(path); !d.IsDir() && (ext == ".yaml" || ext == ".yml") {
			files = append(files, path)
		}
		return nil
	})
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(files), 5, "deploy/ should hold the compose file, the base and two overlays")

	for _, path := range files {
		rel, err := filepath.Rel(root, path)
		require.NoError(t, err)
		t.Run(rel, func(t *testing.T) {
			data, err := os.ReadFile(path)
			require.NoError(t, err)
			docs, err := decodeDocuments(data)
			require.NoError(t, err)
			require.NotEmpty(t, docs, "no YAML document")
			if !strings.HasPrefix(rel, filepath.Join("deploy", "k8s")+string(filepath.Separator)) {
				return
			}
			objects, err := parseObjects(data, rel)
			require.NoError(t, err)
			for _, o := range objects {
				require.NotEmpty(t, o.APIVersion, "%s: document without apiVersion", rel)
				require.NotEmpty(t, o.Kind, "%s: document without kind", rel)
				if o.Kind != "Kustomization" {
					require.NotEmpty(t, o.Metadata.Name, "%s: %s without metadata.name", rel, o.Kind)
				}
			}
		})
	}
}

func loadCompose(t *testing.T, root string) composeFile {
	t.Helper()
	docs := readDocuments(t, filepath.Join(root, "deploy", "compose", "compose.yaml"))
	require.Len(t, docs, 1)
	var c composeFile
	require.NoError(t, docs[0].Decode(&c))
	return c
}

func TestComposeRunsEveryServiceAndBackendWithHealthChecks(t *testing.T) {
	root := repoRoot(t)
	c := loadCompose(t, root)
	requireNoProblems(t, composeProblems(c, filepath.Join(root, "deploy", "compose"), root))
}

func TestComposeBackendVersions(t *testing.T) {
	c := loadCompose(t, repoRoot(t))
	tests := []struct {
		service string
		image   string // repository
		check   func(tag string) bool
		want    string
	}{
		{"nats", "nats", func(tag string) bool { return versionAtLeast(tag, 2, 11) }, "2.11 or later (JetStream features the services use)"},
		{"neo4j", "neo4j", func(tag string) bool { return strings.HasPrefix(tag, "5.26") }, "5.26"},
		{"redis", "redis", func(tag string) bool { return strings.HasPrefix(tag, "7") }, "7"},
		{"qdrant", "qdrant/qdrant", func(tag string) bool { return tag != "" && tag != "latest" }, "a pinned version"},
	}
	for _, tt := range tests {
		t.Run(tt.service, func(t *testing.T) {
			image := c.Services[tt.service].Image
			repo, tag, _ := strings.Cut(image, ":")
			require.Equal(t, tt.image, repo, "image %s", image)
			require.True(t, tt.check(tag), "%s image %s: want %s", tt.service, image, tt.want)
		})
	}
}

func versionAtLeast(tag string, major, minor int) bool {
	m := regexp.MustCompile(`^(\d+)\.(\d+)`).FindStringSubmatch(tag)
	if m == nil {
		return false
	}
	gotMajor, _ := strconv.Atoi(m[1])
	gotMinor, _ := strconv.Atoi(m[2])
	return gotMajor > major || gotMajor == major && gotMinor >= minor
}

func TestComposeNATSUsesTheDurableConfig(t *testing.T) {
	root := repoRoot(t)
	nats := loadCompose(t, root).Services["nats"]

	var target string
	for _, v := range nats.Volumes {
		parts := strings.Split(v, ":")
		if len(parts) >= 2 && filepath.Clean(parts[0]) == "nats.conf" {
			target = parts[1]
		}
	}
	require.NotEmpty(t, target, "nats does not mount ./nats.conf")
	require.Contains(t, nats.Command, target, "nats is not started with the mounted config")

	data, err := os.ReadFile(filepath.Join(root, "deploy", "compose", "nats.conf"))
	require.NoError(t, err)
	requireNoProblems(t, natsConfProblems(string(data)))
}

func TestKustomizationsReferenceExistingFiles(t *testing.T) {
	root := repoRoot(t)
	var dirs []string
	err := filepath.WalkDir(filepath.Join(root, "deploy", "k8s"), func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && d.Name() == "kustomization.yaml" {
			dirs = append(dirs, filepath.Dir(path))
		}
		return nil
	})
	require.NoError(t, err)
	require.Len(t, dirs, 3, "base, overlays/dev and overlays/prod")

	exists := func(path string) (bool, bool) {
		info, err := os.Stat(path)
		return err == nil && info.IsDir(), err == nil
	}
	for _, dir := range dirs {
		requireNoProblems(t, kustomizationProblems(dir, readKustomization(t, dir), exists))
	}
}

func TestBaseKustomizationListsEveryManifest(t *testing.T) {
	baseDir := filepath.Join(repoRoot(t), "deploy", "k8s", "base")
	listed := readKustomization(t, baseDir).Resources
	files, err := filepath.Glob(filepath.Join(baseDir, "*.yaml"))
	require.NoError(t, err)
	for _, f := range files {
		if name := filepath.Base(f); name != "kustomization.yaml" {
			require.Contains(t, listed, name, "base/%s is not in base/kustomization.yaml resources", name)
		}
	}
}

func baseDeployments(t *testing.T, objects []object) map[string]deployment {
	t.Helper()
	var p problems
	deployments := deploymentsByName(objects, &p)
	requireNoProblems(t, p)
	return deployments
}

func TestBaseHasASafeDeploymentPerService(t *testing.T) {
	objects := baseObjects(t, filepath.Join(repoRoot(t), "deploy", "k8s", "base"))
	requireNoProblems(t, deploymentSetProblems(objects))
}

func TestBaseHasAPodDisruptionBudgetPerService(t *testing.T) {
	objects := baseObjects(t, filepath.Join(repoRoot(t), "deploy", "k8s", "base"))
	requireNoProblems(t, pdbSetProblems(objects))
}

func TestBaseScalesPipelineWorkersOnJetStreamBacklog(t *testing.T) {
	objects := baseObjects(t, filepath.Join(repoRoot(t), "deploy", "k8s", "base"))
	requireNoProblems(t, scaledObjectSetProblems(objects))
}

func TestBaseNetworkPolicies(t *testing.T) {
	objects := baseObjects(t, filepath.Join(repoRoot(t), "deploy", "k8s", "base"))
	requireNoProblems(t, networkPolicySetProblems(objects))
}

// TestNoSecretValuesInManifests covers every manifest file, overlays included:
// secrets arrive by reference only.
func TestNoSecretValuesInManifests(t *testing.T) {
	root := repoRoot(t)
	err := filepath.WalkDir(filepath.Join(root, "deploy", "k8s"), func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || filepath.Ext(path) != ".yaml" {
			return err
		}
		data, err := os.ReadFile(path)
		require.NoError(t, err)
		objects, err := parseObjects(data, path)
		require.NoError(t, err)
		requireNoProblems(t, secretValueProblems(objects))
		return nil
	})
	require.NoError(t, err)
}

func TestOverlaysPinEveryImage(t *testing.T) {
	k8s := filepath.Join(repoRoot(t), "deploy", "k8s")
	var images []string
	for _, d := range baseDeployments(t, baseObjects(t, filepath.Join(k8s, "base"))) {
		for _, c := range d.Spec.Template.Spec.Containers {
			images = append(images, imageName(c.Image))
		}
	}
	require.Len(t, images, len(kgraphServices()))
	for _, overlay := range []string{"dev", "prod"} {
		k := readKustomization(t, filepath.Join(k8s, "overlays", overlay))
		require.Contains(t, k.Resources, "../../base", "overlay %s does not build on the base", overlay)
		requireNoProblems(t, overlayImageProblems(overlay, k, images))
	}
}

// TestRenderedOverlays builds each overlay the way a deploy would and checks
// the result, so a patch cannot undo what the base guarantees.
func TestRenderedOverlays(t *testing.T) {
	k8s := filepath.Join(repoRoot(t), "deploy", "k8s")
	render := kustomizeCommand(t)
	for _, overlay := range []string{"dev", "prod"} {
		t.Run(overlay, func(t *testing.T) {
			objects, err := parseObjects(render(filepath.Join(k8s, "overlays", overlay)), "overlays/"+overlay)
			require.NoError(t, err)
			for _, o := range objects {
				if o.Kind != "Namespace" {
					require.Equal(t, "kgraph", o.Metadata.Namespace, "%s", o)
				}
			}
			requireNoProblems(t, slices.Concat(
				deploymentSetProblems(objects),
				pdbSetProblems(objects),
				scaledObjectSetProblems(objects),
				networkPolicySetProblems(objects),
				secretValueProblems(objects),
			))
			for _, d := range baseDeployments(t, objects) {
				for _, c := range d.Spec.Template.Spec.Containers {
					require.True(t, pinnedImage(c.Image), "%s runs unpinned image %s", d.Metadata.Name, c.Image)
				}
			}
		})
	}
}

// kustomizeCommand finds kustomize, or kubectl's built-in copy, and skips the
// test when neither is installed.
func kustomizeCommand(t *testing.T) func(dir string) []byte {
	t.Helper()
	var argv []string
	if path, err := exec.LookPath("kustomize"); err == nil {
		argv = []string{path, "build"}
	} else if path, err := exec.LookPath("kubectl"); err == nil {
		argv = []string{path, "kustomize"}
	} else {
		t.Skip("neither kustomize nor kubectl is installed")
	}
	return func(dir string) []byte {
		var stdout, stderr bytes.Buffer
		cmd := exec.CommandContext(t.Context(), argv[0], append(argv[1:], dir)...)
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		require.NoError(t, cmd.Run(), "%s %s: %s", strings.Join(argv, " "), dir, stderr.String())
		return stdout.Bytes()
	}
}

func TestDockerfileBuildsAnyServiceStaticAndNonRoot(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(repoRoot(t), "Dockerfile"))
	require.NoError(t, err)
	requireNoProblems(t, dockerfileProblems(string(data)))
	for _, name := range kgraphServices() {
		require.Contains(t, string(data), name, "the Dockerfile's SERVICE check does not accept %s", name)
	}
}

func TestDockerignoreKeepsTheWorkspace(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(repoRoot(t), ".dockerignore"))
	require.NoError(t, err)
	var patterns []string
	for line := range strings.SplitSeq(string(data), "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			patterns = append(patterns, strings.TrimSuffix(line, "/"))
		}
	}
	require.Contains(t, patterns, ".git")
	// The build reads these; ignoring one breaks every image.
	for _, needed := range []string{"go.work", "go.mod", "**/go.mod", "**/go.sum", "*.go", "**/*.go",
		"events", "libs", "services", "tools", "deploy"} {
		require.NotContains(t, patterns, needed)
	}
}

func TestStaticcheckConfig(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(repoRoot(t), "staticcheck.conf"))
	require.NoError(t, err)
	requireNoProblems(t, staticcheckProblems(string(data)))
}

// TestEdgeAuthenticationIsOn: the production manifests and the compose
// stack run the REST edge with API keys, never with authentication off.
func TestEdgeAuthenticationIsOn(t *testing.T) {
	root := repoRoot(t)
	var p problems
	edges := 0
	for _, d := range decodeKind[deployment](baseObjects(t, filepath.Join(root, "deploy", "k8s", "base")), "Deployment", &p) {
		if d.Metadata.Name != "ingest-api" {
			continue
		}
		edges++
		keys := false
		for _, c := range d.Spec.Template.Spec.Containers {
			for _, e := range c.Env {
				if e.Name == "KG_AUTH_DISABLED" {
					p.add("ingest-api sets KG_AUTH_DISABLED")
				}
				if e.Name == "KG_API_KEYS" && e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
					keys = true
				}
			}
		}
		if !keys {
			p.add("ingest-api takes no KG_API_KEYS from a Secret")
		}
	}
	require.Equal(t, 1, edges, "the base has one ingest-api deployment")
	c := loadCompose(t, root)
	edge := c.Services["ingest-api"]
	if edge.Environment["KG_API_KEYS"] == "" || edge.Environment["KG_AUTH_DISABLED"] != "" {
		p.add("compose ingest-api must require KG_API_KEYS and must not switch authentication off")
	}
	requireNoProblems(t, p)
}
