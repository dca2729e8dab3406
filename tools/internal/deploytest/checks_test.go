package deploytest

import (
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Each check returns what is wrong, one sentence per problem, so a failing
// test lists every problem at once and the mutation tests can assert which
// problem a broken input produces.

const (
	labelName   = "app.kubernetes.io/name"
	labelPartOf = "app.kubernetes.io/part-of"
	partOf      = "kgraph"
)

// kgraphServices are the seven services, each a module under services/.
func kgraphServices() []string {
	return []string{"ingest-api", "dedup", "extractor", "graph-writer", "vector-indexer", "projection", "query"}
}

// backlogConsumers maps each KEDA-scaled service to the JetStream consumer on
// stream EVENTS whose backlog it scales on.
func backlogConsumers() map[string]string {
	return map[string]string{
		"extractor":      "extractor-chunks",
		"graph-writer":   "graph-writer",
		"vector-indexer": "vector-indexer",
	}
}

func composeBackends() []string { return []string{"nats", "neo4j", "qdrant", "redis"} }

// looksSecret reports whether an environment variable name suggests its value
// is a credential.
func looksSecret(name string) bool {
	upper := strings.ToUpper(name)
	for _, word := range []string{"PASSWORD", "KEY", "SECRET", "TOKEN"} {
		if strings.Contains(upper, word) {
			return true
		}
	}
	return false
}

type problems []string

func (p *problems) add(format string, args ...any) { *p = append(*p, fmt.Sprintf(format, args...)) }

// deploymentProblems checks one kgraph Deployment: labels, probes, resources,
// non-root, read-only root filesystem and secrets by reference.
func deploymentProblems(d deployment) []string {
	var p problems
	name := d.Metadata.Name
	for _, l := range []struct {
		where  string
		labels map[string]string
	}{{"metadata", d.Metadata.Labels}, {"pod template", d.Spec.Template.Metadata.Labels}} {
		if got := l.labels[labelName]; got != name {
			p.add("%s: %s label %s is %q, want %q", name, l.where, labelName, got, name)
		}
		if got := l.labels[labelPartOf]; got != partOf {
			p.add("%s: %s label %s is %q, want %q", name, l.where, labelPartOf, got, partOf)
		}
	}
	if d.Spec.Selector.empty() || !d.Spec.Selector.selects(d.Spec.Template.Metadata.Labels) {
		p.add("%s: selector does not match the pod template's labels", name)
	}
	pod := d.Spec.Template.Spec
	podNonRoot := pod.SecurityContext != nil && pod.SecurityContext.RunAsNonRoot != nil && *pod.SecurityContext.RunAsNonRoot
	if pod.SecurityContext != nil && pod.SecurityContext.RunAsUser != nil && *pod.SecurityContext.RunAsUser == 0 {
		p.add("%s: pod runs as user 0", name)
	}
	if len(pod.Containers) == 0 {
		p.add("%s: no containers", name)
	}
	for _, c := range pod.Containers {
		if !c.LivenessProbe.hasHandler() {
			p.add("%s/%s: no liveness probe", name, c.Name)
		}
		if !c.ReadinessProbe.hasHandler() {
			p.add("%s/%s: no readiness probe", name, c.Name)
		}
	}
	for _, c := range slices.Concat(pod.InitContainers, pod.Containers) {
		p = append(p, containerProblems(name, c, podNonRoot)...)
	}
	return p
}

func containerProblems(deploymentName string, c container, podNonRoot bool) []string {
	var p problems
	where := deploymentName + "/" + c.Name
	for _, r := range []string{"cpu", "memory"} {
		if c.Resources.Requests[r] == "" {
			p.add("%s: no %s request", where, r)
		}
	}
	// A memory limit turns a leak into a restart instead of a node under
	// pressure. A CPU limit is a tuning choice, so it is not required.
	if c.Resources.Limits["memory"] == "" {
		p.add("%s: no memory limit", where)
	}
	sc := c.SecurityContext
	nonRoot := podNonRoot
	if sc != nil && sc.RunAsNonRoot != nil {
		nonRoot = *sc.RunAsNonRoot
	}
	if !nonRoot {
		p.add("%s: runAsNonRoot is not true", where)
	}
	if sc != nil && sc.RunAsUser != nil && *sc.RunAsUser == 0 {
		p.add("%s: runs as user 0", where)
	}
	if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		p.add("%s: readOnlyRootFilesystem is not true", where)
	}
	if sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		p.add("%s: allowPrivilegeEscalation is not false", where)
	}
	for _, e := range c.Env {
		if !looksSecret(e.Name) {
			continue
		}
		switch {
		case e.Value != nil:
			p.add("%s: env %s has an inline value; use valueFrom.secretKeyRef", where, e.Name)
		case e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil:
			p.add("%s: env %s does not come from valueFrom.secretKeyRef", where, e.Name)
		case e.ValueFrom.SecretKeyRef.Name == "" || e.ValueFrom.SecretKeyRef.Key == "":
			p.add("%s: env %s: secretKeyRef needs a name and a key", where, e.Name)
		}
	}
	return p
}

// configMapProblems catches secrets smuggled in through envFrom.
func configMapProblems(cm configMap) []string {
	var p problems
	for k, v := range cm.Data {
		if looksSecret(k) && v != "" {
			p.add("ConfigMap %s: key %s holds a value; secrets belong in a Secret, by secretKeyRef", cm.Metadata.Name, k)
		}
	}
	return p
}

// secretProblems: no Secret with values is ever committed.
func secretProblems(s secret) []string {
	var p problems
	if len(s.Data) > 0 || len(s.StringData) > 0 {
		p.add("Secret %s carries values in the repository; create it out of band", s.Metadata.Name)
	}
	return p
}

func pdbProblems(pdb podDisruptionBudget, d deployment) []string {
	var p problems
	if pdb.Spec.Selector.empty() || !pdb.Spec.Selector.selects(d.Spec.Template.Metadata.Labels) {
		p.add("PodDisruptionBudget %s does not select the pods of Deployment %s", pdb.Metadata.Name, d.Metadata.Name)
	}
	if pdb.Spec.MinAvailable == nil && pdb.Spec.MaxUnavailable == nil {
		p.add("PodDisruptionBudget %s sets neither minAvailable nor maxUnavailable", pdb.Metadata.Name)
	}
	return p
}

func scaledObjectProblems(so scaledObject, target deployment, consumer string) []string {
	var p problems
	name := so.Metadata.Name
	if so.Spec.ScaleTargetRef.Name != target.Metadata.Name {
		p.add("ScaledObject %s targets %q, want Deployment %s", name, so.Spec.ScaleTargetRef.Name, target.Metadata.Name)
	}
	if kind := so.Spec.ScaleTargetRef.Kind; kind != "" && kind != "Deployment" {
		p.add("ScaledObject %s targets a %s, want a Deployment", name, kind)
	}
	// At zero replicas nobody consumes the service's other subjects, and the
	// trigger only watches one consumer, so that work would never start.
	if so.Spec.MinReplicaCount == nil || *so.Spec.MinReplicaCount < 1 {
		p.add("ScaledObject %s: minReplicaCount must be at least 1", name)
	}
	if so.Spec.MaxReplicaCount != nil && so.Spec.MinReplicaCount != nil && *so.Spec.MaxReplicaCount < *so.Spec.MinReplicaCount {
		p.add("ScaledObject %s: maxReplicaCount is below minReplicaCount", name)
	}
	if target.Spec.Replicas != nil {
		p.add("Deployment %s sets replicas although ScaledObject %s owns them", target.Metadata.Name, name)
	}
	var found bool
	for _, tr := range so.Spec.Triggers {
		if tr.Type != "nats-jetstream" {
			continue
		}
		found = true
		want := map[string]string{"stream": "EVENTS", "consumer": consumer, "account": "$G"}
		for k, v := range want {
			if tr.Metadata[k] != v {
				p.add("ScaledObject %s: trigger %s is %q, want %q", name, k, tr.Metadata[k], v)
			}
		}
		if tr.Metadata["natsServerMonitoringEndpoint"] == "" {
			p.add("ScaledObject %s: trigger has no natsServerMonitoringEndpoint", name)
		}
		if tr.Metadata["lagThreshold"] == "" {
			p.add("ScaledObject %s: trigger has no lagThreshold", name)
		}
	}
	if !found {
		p.add("ScaledObject %s has no nats-jetstream trigger", name)
	}
	return p
}

func isDefaultDeny(np networkPolicy) bool {
	s := np.Spec
	return s.PodSelector.empty() && slices.Contains(s.PolicyTypes, "Ingress") && slices.Contains(s.PolicyTypes, "Egress") &&
		len(s.Ingress) == 0 && len(s.Egress) == 0
}

// allowed reports whether some policy lets a pod with these labels send
// (egress) or receive (ingress) TCP traffic on port.
func allowed(policies []networkPolicy, direction string, podLabels map[string]string, port int) bool {
	for _, np := range policies {
		if !slices.Contains(np.Spec.PolicyTypes, direction) || !np.Spec.PodSelector.selects(podLabels) {
			continue
		}
		rules := np.Spec.Egress
		if direction == "Ingress" {
			rules = np.Spec.Ingress
		}
		for _, r := range rules {
			if r.allowsPort(strconv.Itoa(port)) {
				return true
			}
		}
	}
	return false
}

func networkPolicyProblems(policies []networkPolicy, deployments []deployment) []string {
	var p problems
	if !slices.ContainsFunc(policies, isDefaultDeny) {
		p.add("no default-deny NetworkPolicy (empty podSelector, Ingress and Egress, no rules)")
	}
	for _, d := range deployments {
		labels := d.Spec.Template.Metadata.Labels
		if !allowed(policies, "Egress", labels, 4222) {
			p.add("no NetworkPolicy lets %s reach NATS on 4222", d.Metadata.Name)
		}
		if !allowed(policies, "Egress", labels, 53) {
			p.add("no NetworkPolicy lets %s resolve DNS", d.Metadata.Name)
		}
		if d.Metadata.Name != "ingest-api" {
			continue
		}
		for _, c := range d.Spec.Template.Spec.Containers {
			for _, port := range c.Ports {
				if port.Name == "http" && !allowed(policies, "Ingress", labels, port.ContainerPort) {
					p.add("no NetworkPolicy lets traffic into ingest-api on %d", port.ContainerPort)
				}
			}
		}
	}
	return p
}

// kustomizationProblems checks that every path a kustomization names exists;
// a directory must itself hold a kustomization.
func kustomizationProblems(dir string, k kustomization, exists func(path string) (isDir bool, ok bool)) []string {
	var p problems
	paths := slices.Concat(k.Resources, k.Components, k.PatchesStrategicMerge)
	for _, patch := range k.Patches {
		if patch.Path != "" {
			paths = append(paths, patch.Path)
		}
	}
	for _, rel := range paths {
		if strings.Contains(rel, "://") {
			p.add("%s: remote resource %s; vendor it instead", dir, rel)
			continue
		}
		path := filepath.Join(dir, rel)
		isDir, ok := exists(path)
		if !ok {
			p.add("%s: %s does not exist", dir, rel)
			continue
		}
		if isDir {
			if _, ok := exists(filepath.Join(path, "kustomization.yaml")); !ok {
				p.add("%s: directory %s holds no kustomization.yaml", dir, rel)
			}
		}
	}
	return p
}

// overlayImageProblems: an overlay pins a tag or digest for every image the
// base uses, so no environment runs the base's untagged (latest) image.
func overlayImageProblems(overlay string, k kustomization, baseImages []string) []string {
	var p problems
	for _, img := range baseImages {
		i := slices.IndexFunc(k.Images, func(e kustomizeImage) bool { return e.Name == img })
		switch {
		case i < 0:
			p.add("overlay %s does not set the image %s", overlay, img)
		case k.Images[i].NewTag == "" && k.Images[i].Digest == "":
			p.add("overlay %s sets neither a tag nor a digest for %s", overlay, img)
		case k.Images[i].NewTag == "latest":
			p.add("overlay %s tags %s as latest", overlay, img)
		}
	}
	return p
}

// imageName strips the tag or digest from an image reference.
func imageName(ref string) string {
	if i := strings.Index(ref, "@"); i >= 0 {
		ref = ref[:i]
	}
	if i := strings.LastIndex(ref, ":"); i > strings.LastIndex(ref, "/") {
		ref = ref[:i]
	}
	return ref
}

func pinnedImage(ref string) bool {
	if strings.Contains(ref, "@sha256:") {
		return true
	}
	tagged := imageName(ref) != ref
	return tagged && !strings.HasSuffix(ref, ":latest")
}

// Compose.

type composeFile struct {
	Services map[string]composeService `yaml:"services"`
	Volumes  map[string]any            `yaml:"volumes"`
}

type composeService struct {
	Image       string                       `yaml:"image"`
	Build       *composeBuild                `yaml:"build"`
	Command     []string                     `yaml:"command"`
	Restart     string                       `yaml:"restart"`
	Environment map[string]string            `yaml:"environment"`
	Healthcheck *composeHealthcheck          `yaml:"healthcheck"`
	DependsOn   map[string]composeDependency `yaml:"depends_on"`
	Volumes     []string                     `yaml:"volumes"`
}

type composeBuild struct {
	Context    string            `yaml:"context"`
	Dockerfile string            `yaml:"dockerfile"`
	Args       map[string]string `yaml:"args"`
}

type composeHealthcheck struct {
	Test    []string `yaml:"test"`
	Disable bool     `yaml:"disable"`
}

type composeDependency struct {
	Condition string `yaml:"condition"`
}

func healthcheckProblems(name string, hc *composeHealthcheck) []string {
	var p problems
	switch {
	case hc == nil || len(hc.Test) == 0:
		p.add("compose service %s has no healthcheck", name)
	case hc.Disable || hc.Test[0] == "NONE":
		p.add("compose service %s disables its healthcheck", name)
	case hc.Test[0] != "CMD" && hc.Test[0] != "CMD-SHELL":
		p.add("compose service %s: healthcheck test must start with CMD or CMD-SHELL", name)
	}
	return p
}

func restartProblems(name string, restart string) []string {
	var p problems
	if !slices.Contains([]string{"always", "unless-stopped", "on-failure"}, strings.SplitN(restart, ":", 2)[0]) {
		p.add("compose service %s: restart policy %q does not restart it", name, restart)
	}
	return p
}

// composeSecretProblems: a credential in the compose file is an interpolation
// (${VAR...}) filled from the environment or .env, never a literal.
func composeSecretProblems(name string, env map[string]string) []string {
	var p problems
	interpolation := regexp.MustCompile(`^\$\{[A-Za-z_][A-Za-z0-9_]*(:?[-?+][^}]*)?\}$`)
	for k, v := range env {
		if looksSecret(k) && v != "" && !interpolation.MatchString(v) {
			p.add("compose service %s: %s is a literal; use ${%s}", name, k, k)
		}
	}
	return p
}

// kgraphComposeServiceProblems checks one of the seven services in compose.
func kgraphComposeServiceProblems(name string, svc composeService, composeDir, root string, volumes map[string]any) []string {
	var p problems
	switch {
	case svc.Build == nil:
		p.add("compose service %s is not built from the repository", name)
	default:
		if got := svc.Build.Args["SERVICE"]; got != name {
			p.add("compose service %s: build arg SERVICE is %q", name, got)
		}
		if ctx := filepath.Join(composeDir, svc.Build.Context); ctx != root {
			p.add("compose service %s: build context %s is not the repository root", name, svc.Build.Context)
		}
		if df := svc.Build.Dockerfile; df != "" && df != "Dockerfile" {
			p.add("compose service %s: dockerfile %s is not the root Dockerfile", name, df)
		}
	}
	p = append(p, healthcheckProblems(name, svc.Healthcheck)...)
	p = append(p, restartProblems(name, svc.Restart)...)
	if dep, ok := svc.DependsOn["nats"]; !ok || dep.Condition != "service_healthy" {
		p.add("compose service %s does not depend on nats being healthy", name)
	}
	for dep, cond := range svc.DependsOn {
		if cond.Condition != "service_healthy" {
			p.add("compose service %s: depends_on %s has condition %q, want service_healthy", name, dep, cond.Condition)
		}
	}
	for _, v := range []string{"NATS_URL", "KG_DATA_DIR"} {
		if svc.Environment[v] == "" {
			p.add("compose service %s does not set %s", name, v)
		}
	}
	if dataDir := svc.Environment["KG_DATA_DIR"]; dataDir != "" {
		mounted := slices.ContainsFunc(svc.Volumes, func(v string) bool {
			parts := strings.Split(v, ":")
			_, named := volumes[parts[0]]
			return len(parts) >= 2 && named && parts[1] == dataDir
		})
		if !mounted {
			p.add("compose service %s does not mount a named volume at KG_DATA_DIR (%s)", name, dataDir)
		}
	}
	p = append(p, composeSecretProblems(name, svc.Environment)...)
	return p
}

// natsConfProblems checks the NATS server configuration: JetStream on, every
// write fsynced (single node), monitoring on for health checks and KEDA.
func natsConfProblems(text string) []string {
	var p problems
	var lines []string
	for line := range strings.SplitSeq(text, "\n") {
		if i := strings.Index(line, "#"); i >= 0 {
			line = line[:i]
		}
		if strings.HasPrefix(strings.TrimSpace(line), "//") {
			line = ""
		}
		lines = append(lines, line)
	}
	conf := strings.Join(lines, "\n")
	block, ok := natsBlock(conf, "jetstream")
	if !ok {
		p.add("nats.conf: no jetstream { ... } block")
	} else if !regexp.MustCompile(`(?m)^\s*(sync_interval|sync)\s*[:=]?\s*"?always"?\s*$`).MatchString(block) {
		p.add("nats.conf: jetstream block does not set sync_interval: always")
	}
	if !regexp.MustCompile(`(?m)^\s*(http|http_port|monitor_port)\s*[:=]?\s*\S*8222\b`).MatchString(conf) {
		p.add("nats.conf: monitoring is not on port 8222")
	}
	return p
}

// natsBlock returns the body of a top-level "name { ... }" block.
func natsBlock(conf, name string) (string, bool) {
	loc := regexp.MustCompile(`(?m)^\s*` + regexp.QuoteMeta(name) + `\s*[:=]?\s*\{`).FindStringIndex(conf)
	if loc == nil {
		return "", false
	}
	depth := 0
	for i := loc[1] - 1; i < len(conf); i++ {
		switch conf[i] {
		case '{':
			depth++
		case '}':
			depth--
			if depth == 0 {
				return conf[loc[1]:i], true
			}
		}
	}
	return "", false
}

// Dockerfile.

type dockerInstruction struct {
	cmd  string // upper case
	args string
}

// parseDockerfile joins continuation lines and drops comments.
func parseDockerfile(text string) []dockerInstruction {
	var out []dockerInstruction
	var cur strings.Builder
	flush := func() {
		line := strings.TrimSpace(cur.String())
		cur.Reset()
		if line == "" {
			return
		}
		cmd, args, _ := strings.Cut(line, " ")
		out = append(out, dockerInstruction{cmd: strings.ToUpper(cmd), args: strings.TrimSpace(args)})
	}
	for line := range strings.SplitSeq(text, "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "#") {
			continue
		}
		if rest, ok := strings.CutSuffix(trimmed, `\`); ok {
			cur.WriteString(rest + " ")
			continue
		}
		cur.WriteString(trimmed)
		flush()
	}
	flush()
	return out
}

func dockerfileProblems(text string) []string {
	var p problems
	ins := parseDockerfile(text)
	hasArg := slices.ContainsFunc(ins, func(i dockerInstruction) bool {
		return i.cmd == "ARG" && (i.args == "SERVICE" || strings.HasPrefix(i.args, "SERVICE="))
	})
	if !hasArg {
		p.add("Dockerfile: no ARG SERVICE")
	}
	cgoOff := regexp.MustCompile(`(^|\s)CGO_ENABLED=0(\s|$)`)
	if !slices.ContainsFunc(ins, func(i dockerInstruction) bool {
		return (i.cmd == "ENV" || i.cmd == "RUN") && cgoOff.MatchString(i.args)
	}) {
		p.add("Dockerfile: CGO_ENABLED=0 is not set for the build")
	}
	last := -1
	for i, in := range ins {
		if in.cmd == "FROM" {
			last = i
		}
	}
	if last < 0 {
		p.add("Dockerfile: no FROM")
		return p
	}
	var base string
	for f := range strings.FieldsSeq(ins[last].args) {
		if !strings.HasPrefix(f, "--") {
			base = f
			break
		}
	}
	if base != "scratch" && !strings.Contains(base, "distroless") {
		p.add("Dockerfile: final stage is %s, want distroless or scratch", base)
	}
	final := ins[last+1:]
	user := ""
	for _, in := range final {
		if in.cmd == "USER" {
			user = in.args
		}
	}
	uid, _, _ := strings.Cut(user, ":")
	if n, err := strconv.Atoi(uid); user == "" || err != nil || n == 0 {
		// Numeric, so Kubernetes' runAsNonRoot can verify it without /etc/passwd.
		p.add("Dockerfile: final stage USER is %q, want a numeric non-root uid", user)
	}
	if !slices.ContainsFunc(final, func(i dockerInstruction) bool { return i.cmd == "ENTRYPOINT" }) {
		p.add("Dockerfile: final stage has no ENTRYPOINT")
	}
	return p
}

// staticcheckProblems checks the staticcheck configuration's checks list.
func staticcheckProblems(text string) []string {
	var p problems
	m := regexp.MustCompile(`(?m)^\s*checks\s*=\s*\[([^\]]*)\]`).FindStringSubmatch(text)
	if m == nil {
		p.add("staticcheck.conf: no checks = [...]")
		return p
	}
	var got []string
	for _, q := range regexp.MustCompile(`"([^"]*)"`).FindAllStringSubmatch(m[1], -1) {
		got = append(got, q[1])
	}
	if want := []string{"all", "-ST1000", "-ST1003"}; !slices.Equal(got, want) {
		p.add("staticcheck.conf: checks are %q, want %q", got, want)
	}
	return p
}

// Whole-file and whole-base checks, shared by the tests on the real files and
// the mutation tests.

func composeProblems(c composeFile, composeDir, root string) []string {
	var p problems
	for _, name := range kgraphServices() {
		svc, ok := c.Services[name]
		if !ok {
			p.add("compose has no service %s", name)
			continue
		}
		p = append(p, kgraphComposeServiceProblems(name, svc, composeDir, root, c.Volumes)...)
	}
	for _, name := range composeBackends() {
		svc, ok := c.Services[name]
		if !ok {
			p.add("compose has no service %s", name)
			continue
		}
		p = append(p, healthcheckProblems(name, svc.Healthcheck)...)
		p = append(p, restartProblems(name, svc.Restart)...)
		p = append(p, composeSecretProblems(name, svc.Environment)...)
	}
	for name := range c.Services {
		if !slices.Contains(kgraphServices(), name) && !slices.Contains(composeBackends(), name) {
			p.add("compose service %s is neither a kgraph service nor a known backend; extend the test", name)
		}
	}
	return p
}

func decodeObject[T any](o object) (T, error) {
	var v T
	if err := o.node.Decode(&v); err != nil {
		return v, fmt.Errorf("decode %s: %w", o, err)
	}
	return v, nil
}

// decodeKind decodes every object of a kind, reporting decode errors as problems.
func decodeKind[T any](objects []object, kind string, p *problems) []T {
	var out []T
	for _, o := range objects {
		if o.Kind != kind {
			continue
		}
		v, err := decodeObject[T](o)
		if err != nil {
			p.add("%v", err)
			continue
		}
		out = append(out, v)
	}
	return out
}

func deploymentsByName(objects []object, p *problems) map[string]deployment {
	out := map[string]deployment{}
	for _, d := range decodeKind[deployment](objects, "Deployment", p) {
		if _, dup := out[d.Metadata.Name]; dup {
			p.add("two Deployments named %s", d.Metadata.Name)
		}
		out[d.Metadata.Name] = d
	}
	return out
}

// deploymentSetProblems: exactly one safe Deployment per service.
func deploymentSetProblems(objects []object) []string {
	var p problems
	deployments := deploymentsByName(objects, &p)
	for _, name := range kgraphServices() {
		if _, ok := deployments[name]; !ok {
			p.add("no Deployment %s", name)
		}
	}
	for name, d := range deployments {
		if !slices.Contains(kgraphServices(), name) {
			p.add("Deployment %s is not a kgraph service; extend the test", name)
		}
		p = append(p, deploymentProblems(d)...)
	}
	return p
}

func pdbSetProblems(objects []object) []string {
	var p problems
	deployments := deploymentsByName(objects, &p)
	pdbs := map[string]podDisruptionBudget{}
	for _, pdb := range decodeKind[podDisruptionBudget](objects, "PodDisruptionBudget", &p) {
		pdbs[pdb.Metadata.Name] = pdb
	}
	for _, name := range kgraphServices() {
		pdb, ok := pdbs[name]
		if !ok {
			p.add("no PodDisruptionBudget %s", name)
			continue
		}
		p = append(p, pdbProblems(pdb, deployments[name])...)
	}
	return p
}

func scaledObjectSetProblems(objects []object) []string {
	var p problems
	deployments := deploymentsByName(objects, &p)
	byTarget := map[string]scaledObject{}
	for _, o := range objects {
		if o.Kind == "ScaledObject" && o.APIVersion != "keda.sh/v1alpha1" {
			p.add("%s: apiVersion %s, want keda.sh/v1alpha1", o, o.APIVersion)
		}
	}
	for _, so := range decodeKind[scaledObject](objects, "ScaledObject", &p) {
		byTarget[so.Spec.ScaleTargetRef.Name] = so
	}
	for service, consumer := range backlogConsumers() {
		so, ok := byTarget[service]
		if !ok {
			p.add("no ScaledObject targets %s", service)
			continue
		}
		p = append(p, scaledObjectProblems(so, deployments[service], consumer)...)
	}
	for target := range byTarget {
		if _, ok := backlogConsumers()[target]; !ok {
			p.add("ScaledObject for %s, which has no backlog consumer in this test", target)
		}
	}
	return p
}

func networkPolicySetProblems(objects []object) []string {
	var p problems
	policies := decodeKind[networkPolicy](objects, "NetworkPolicy", &p)
	deployments := decodeKind[deployment](objects, "Deployment", &p)
	p = append(p, networkPolicyProblems(policies, deployments)...)
	// Only the REST edge takes traffic on its HTTP port.
	for _, d := range deployments {
		if d.Metadata.Name != "ingest-api" && allowed(policies, "Ingress", d.Spec.Template.Metadata.Labels, 8080) {
			p.add("NetworkPolicy lets traffic into %s on 8080", d.Metadata.Name)
		}
	}
	return p
}

// secretValueProblems: ConfigMaps hold no credentials, Secrets no values.
func secretValueProblems(objects []object) []string {
	var p problems
	for _, cm := range decodeKind[configMap](objects, "ConfigMap", &p) {
		p = append(p, configMapProblems(cm)...)
	}
	for _, s := range decodeKind[secret](objects, "Secret", &p) {
		p = append(p, secretProblems(s)...)
	}
	return p
}
