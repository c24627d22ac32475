package e2e_test

// The examples the README, the docs and every command's --help show run as
// written (issue 13), against loopback stand-ins for what only a user has:
//
//   - Examples are found, not listed: every line of a sh/bash/shell block
//     and every `$ `/rollsafe/kubectl line of a plain block in README.md
//     and docs/**/*.md, and every line of the Examples section of
//     `rollsafe <cmd> --help` (the built binary, so the text is the one a
//     user reads). A new example therefore runs by default.
//   - What cannot run here is listed in notRunnable with the reason; a
//     stale entry (no example matches it) fails the test too.
//   - Placeholders (https://app.example.com, namespace prod, the target
//     group ARN, K/NS/URL from `lab --serve`) are replaced by what stands
//     in for them on loopback, by the explicit tables below; nothing else
//     in the text changes. `go run ./cmd/rollsafe` is the binary it builds.
//   - Runs are bounded: bounds appends a flag that caps rollouts or the
//     probe's duration (later flags win in cobra), and every run has a
//     deadline, after which it gets SIGINT like a user's Ctrl-C.
//
// Examples that need a Kubernetes API (--kube, --live, soak, kubectl
// against a cluster) run against `rollsafe lab --kube --serve` on the real
// control plane built by scripts/controlplane.sh: its ELBv2 API through
// AWS_ENDPOINT_URL_ELASTIC_LOAD_BALANCING_V2 and its kubeconfig through
// KUBECONFIG, the variables the AWS SDK and client-go read on a laptop.

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rollsafe/rollsafe/internal/controlplane"
	"github.com/rollsafe/rollsafe/internal/demoapi"
)

// notRunnable: examples (exact text, continuation lines joined) that this
// test cannot run, with the reason.
var notRunnable = map[string]string{
	"./scripts/test": "the whole test suite, this test included",
	"rollsafe report run.ndjson s3://my-alb-logs/AWSLogs/123456789012/elasticloadbalancing/us-east-1/2026/12/02/":                                                                 "reads S3: needs AWS credentials and the bucket",
	`rollsafe report run.ndjson s3://my-alb-logs/AWSLogs/123456789012/elasticloadbalancing/ -o json --html ""`:                                                                    "reads S3: needs AWS credentials and the bucket",
	"rollsafe logs s3://my-alb-logs/AWSLogs/123456789012/elasticloadbalancing/us-east-2/2024/03/01/":                                                                              "reads S3: needs AWS credentials and the bucket",
	"helm template my-chart | rollsafe check -":                                                                                                                                   "needs helm and the user's chart; `rollsafe check -` on stdin runs in docs/guide.md's `kubectl kustomize … | rollsafe check --recommend -`",
	"kubectl apply -n shop -f deploy/soak/rbac.yaml -f deploy/soak/job.yaml":                                                                                                      "the Job runs the rollsafe container image in the cluster; the lab's node agent runs host processes, not images",
	"kubectl apply -k deploy/probe -n probes":                                                                                                                                     "creates the coordinator's Role in the user's namespace; probe/fleet's end-to-end test runs under exactly that Role (fleet.Rules, held equal to deploy/probe)",
	"rollsafe probe https://api.example.com/ --kube -n probes --workers 8 --rate 4000 -d 1h --image 123456789012.dkr.ecr.us-east-1.amazonaws.com/rollsafe:v1 --record run.ndjson": "the workers run --image in the cluster; the lab's node agent runs host processes, so probe/fleet's end-to-end test runs the same flags with the built binary as --worker-command",
	"rollsafe probe https://app.example.com/ --kube -n probes --workers 8 --rate 4000 -d 1h --image 123456789012.dkr.ecr.us-east-1.amazonaws.com/rollsafe:v1 --record run.ndjson": "the workers run --image in the cluster; the lab's node agent runs host processes, so probe/fleet's end-to-end test runs the same flags with the built binary as --worker-command",
}

// exitNot0: examples whose run, working as meant, exits non-zero.
var exitNot0 = map[string]struct {
	code int
	why  string
}{
	// The served scenario is `recommended`, the seeds' 40/50/35 s: check
	// judges it with its defaults (P 17 s, longest request 30 s) and finds
	// errors (deregistration-delay-too-short, shutdown-exceeds-grace); exit
	// 1 is the gate failing, as documented.
	"rollsafe check --live --kubeconfig K -n NS":         {1, "the seeds' 40/50/35 s fail check's defaults"},
	"rollsafe check --live --namespace shop --recommend": {1, "the seeds' 40/50/35 s fail check's defaults"},
}

// A cluster example needs a Kubernetes API: it runs against lab --kube --serve.
func needsCluster(cmd string) bool {
	for _, s := range []string{"--kube", "--live", "rollsafe soak", "kubectl -n", "kubectl apply"} {
		if strings.Contains(cmd, s) {
			return true
		}
	}
	return false
}

// bounds caps each command's runs: rollouts, or how long the probe sends.
var bounds = map[string]string{
	"lab":   "--rollouts 1",
	"probe": "--duration 2s",
	"soak":  "--rollouts 1",
}

type example struct {
	text    string   // as the user reads it
	sources []string // where: README.md:54, rollsafe probe --help
}

func TestExamplesRunAsWritten(t *testing.T) {
	root := repoRoot(t)
	exs := collectExamples(t, root)
	if len(exs) < 20 {
		t.Fatalf("found only %d examples: the extraction is broken", len(exs))
	}
	seen := map[string]bool{}
	var local, cluster []example
	for _, ex := range exs {
		if why, ok := notRunnable[ex.text]; ok {
			t.Logf("not run: %s (%s): %s", ex.text, strings.Join(ex.sources, ", "), why)
			continue
		}
		if needsCluster(ex.text) {
			cluster = append(cluster, ex)
		} else {
			local = append(local, ex)
		}
	}
	for _, ex := range exs {
		seen[ex.text] = true
	}
	for _, table := range []map[string]bool{keys(notRunnable), keys(exitNot0)} {
		for text := range table {
			if !seen[text] {
				t.Errorf("%q is listed, but no README, doc or help text shows it any more", text)
			}
		}
	}
	dir := workDir(t, root)
	t.Run("local", func(t *testing.T) { runLocal(t, dir, local) })
	t.Run("cluster", func(t *testing.T) { runCluster(t, dir, cluster) })
}

// runLocal runs the examples that need no cluster. URLs point at the demo
// API on loopback; files come from one lab run.
func runLocal(t *testing.T, dir string, exs []example) {
	demo := httptest.NewServer(demoapi.New(demoapi.Identity{Service: "jiameng-api", Version: "v1", Replica: "example"},
		http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })))
	defer demo.Close()
	placeholders := append([][2]string{
		{"https://app.example.com", demo.URL},
		{"https://api.example.com", demo.URL},
		{"http://127.0.0.1:1325", demo.URL}, // the demo API's port may be taken on this machine
	}, commonPlaceholders...)
	makeFixtures(t, dir)
	ran := map[string]bool{}
	for _, ex := range exs {
		runExample(t, dir, ex, placeholders, nil, ran)
	}
}

// commonPlaceholders hold in both groups.
var commonPlaceholders = [][2]string{
	{"go run ./cmd/rollsafe", "rollsafe"}, // the binary go run builds, built once by TestMain
}

// runCluster brings up the README's own `lab --kube --serve --scenario
// recommended` and runs the cluster examples against it.
func runCluster(t *testing.T, dir string, exs []example) {
	needControlPlane(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	// The README's `lab --kube --serve --scenario recommended`, with an
	// access log: the cluster the other examples talk to, up until the end.
	lab, s, labErr := serveLab(t, ctx, "recommended", filepath.Join(dir, "cluster-alb.log"))
	defer func() {
		lab.Process.Signal(os.Interrupt)
		if err := lab.Wait(); err != nil {
			t.Errorf("lab --kube --serve: %v\n%s", err, labErr.String())
		}
	}()
	url := strings.TrimSuffix(s.url, "/")
	placeholders := append([][2]string{
		{"https://app.example.com", url},
		{"https://api.example.com", url},
		{"http://127.0.0.1:8080", url},
		{"arn:aws:elasticloadbalancing:…:targetgroup/k8s-prod-api/…", s.arn},
		{"arn:aws:elasticloadbalancing:…:targetgroup/…", s.arn},
		{"--kubeconfig K", "--kubeconfig " + s.kubeconfig},
		{"-n NS", "-n " + s.namespace},
		{"--url URL", "--url " + url + "/"},
		{"--namespace prod", "--namespace " + s.namespace},
		{"--namespace shop", "--namespace " + s.namespace},
		{"-n prod", "-n " + s.namespace},
		{"-n shop", "-n " + s.namespace},
		{"app=api", "app=jiameng-api"},
		{"app=web", "app=jiameng-api"},
		{"--deployment api", "--deployment jiameng-api"},
		{"deployment/api", "deployment/jiameng-api"},
		{"--metrics-listen :9090", "--metrics-listen 127.0.0.1:0"}, // all interfaces, and a port that may be taken
	}, commonPlaceholders...)
	env := []string{"KUBECONFIG=" + s.kubeconfig,
		"AWS_ENDPOINT_URL_ELASTIC_LOAD_BALANCING_V2=" + s.endpoint, "AWS_ENDPOINT_URL=" + s.endpoint,
		"AWS_REGION=us-east-1", "AWS_ACCESS_KEY_ID=lab", "AWS_SECRET_ACCESS_KEY=lab", "AWS_EC2_METADATA_DISABLED=true"}
	ran := map[string]bool{}
	for _, ex := range exs {
		if strings.Contains(ex.text, "--serve") {
			t.Logf("%s (%s): is the lab these examples run against", ex.text, strings.Join(ex.sources, ", "))
			continue
		}
		runExample(t, dir, ex, placeholders, env, ran)
	}
}

// runExample runs one example through bash in dir, with placeholders
// replaced and its bound appended, and wants exit 0. Two examples that
// come to the same command (`go run ./cmd/rollsafe lab`, `rollsafe lab`)
// run once: ran holds the commands run so far.
// urlHost finds the hosts of http(s) URLs in a command line.
var urlHost = regexp.MustCompile(`https?://([^/\s'"]+)`)

// offLoopback is the first host of a URL in cmdline that is not on
// loopback ("" when every one is).
func offLoopback(cmdline string) string {
	for _, m := range urlHost.FindAllStringSubmatch(cmdline, -1) {
		host := m[1]
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		if ip := net.ParseIP(strings.Trim(host, "[]")); ip != nil && ip.IsLoopback() || host == "localhost" {
			continue
		}
		return m[1]
	}
	return ""
}

func runExample(t *testing.T, dir string, ex example, placeholders [][2]string, env []string, ran map[string]bool) {
	t.Helper()
	cmdline := ex.text
	for _, p := range placeholders {
		cmdline = strings.ReplaceAll(cmdline, p[0], p[1])
	}
	cmdline = bound(t, cmdline)
	t.Logf("%s\n\t(%s)\n\truns: %s", ex.text, strings.Join(ex.sources, ", "), cmdline)
	if host := offLoopback(cmdline); host != "" {
		// Traffic from tests goes to loopback only: an example's URL must
		// map to a loopback part through the placeholders.
		t.Errorf("%s (%s): its URL's host %s is no placeholder of this test: use https://app.example.com or https://api.example.com", ex.text, strings.Join(ex.sources, ", "), host)
		return
	}
	if ran[cmdline] {
		return
	}
	ran[cmdline] = true
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-c", cmdline)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "PATH="+filepath.Join(dir, ".bin")+string(os.PathListSeparator)+os.Getenv("PATH"))
	cmd.Env = append(cmd.Env, env...)
	// Ctrl-C to the whole group (lab pods, a pipeline) at the deadline.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGINT) }
	cmd.WaitDelay = 30 * time.Second
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	want := exitNot0[ex.text]
	if code := exitCode(err); code != want.code {
		t.Errorf("%s (%s): exit %d (%v), want %d %s\n%s", ex.text, strings.Join(ex.sources, ", "), code, err, want.code, want.why, tail(out.String(), 3000))
	}
}

// stripComment drops a trailing shell comment: it is prose for the
// reader, and a bound appended after it would be swallowed.
func stripComment(s string) string {
	if i := strings.Index(s, " #"); i >= 0 && !strings.ContainsAny(s[:i], `'"`) {
		return strings.TrimSpace(s[:i])
	}
	return s
}

var rollsafeCmd = regexp.MustCompile(`(?:^|\| *)rollsafe (\w[\w-]*)`)

// bound appends the bound flag of the example's rollsafe command. That
// command must end the line (no pipe or redirect in it), or the flag
// would land on another command.
func bound(t *testing.T, cmdline string) string {
	t.Helper()
	m := rollsafeCmd.FindStringSubmatch(cmdline)
	if m == nil || bounds[m[1]] == "" || strings.Contains(cmdline, "--list") {
		return cmdline
	}
	if strings.ContainsAny(cmdline, "|>") {
		t.Fatalf("cannot bound %q: the rollsafe command does not end the line", cmdline)
	}
	return cmdline + " " + bounds[m[1]]
}

func keys[V any](m map[string]V) map[string]bool {
	out := map[string]bool{}
	for k := range m {
		out[k] = true
	}
	return out
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

func repoRoot(t *testing.T) string {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}").Output()
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(out))
}

// workDir is where the examples run: deploy/ is the repository's (check
// and lab --manifests read it), .bin holds rollsafe, kubectl when the
// control plane's is there, and ./my-server, the lab's --app example:
// the demo API in the user's server's place.
func workDir(t *testing.T, root string) string {
	dir := t.TempDir()
	bin := filepath.Join(dir, ".bin")
	must(t, os.Mkdir(bin, 0o755))
	must(t, os.Symlink(rollsafe, filepath.Join(bin, "rollsafe")))
	if kubectl := filepath.Join(controlplane.BinDir(), "kubectl"); exists(kubectl) {
		must(t, os.Symlink(kubectl, filepath.Join(bin, "kubectl")))
	}
	must(t, os.Symlink(filepath.Join(root, "deploy"), filepath.Join(dir, "deploy")))
	must(t, os.WriteFile(filepath.Join(dir, "my-server"), []byte("#!/bin/sh\n# The user's server: here the demo API, on $POD_IP:$PORT as the lab sets them.\nexec rollsafe demo-api\n"), 0o755))
	return dir
}

// makeFixtures writes the files the examples read, from one lab run: its
// record (run.ndjson, lab.ndjson, targets.ndjson) and its access log
// (alb-access.log, ./alb-logs/, access.log.gz).
func makeFixtures(t *testing.T, dir string) {
	cmd := exec.Command(rollsafe, "lab", "--scenario", "gate-only", "--rollouts", "1",
		"--record", "lab.ndjson", "--access-log", "alb-access.log", "--report", "")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("lab for the fixtures: %v\n%s", err, out)
	}
	rec, err := os.ReadFile(filepath.Join(dir, "lab.ndjson"))
	must(t, err)
	log, err := os.ReadFile(filepath.Join(dir, "alb-access.log"))
	must(t, err)
	must(t, os.WriteFile(filepath.Join(dir, "run.ndjson"), rec, 0o644))
	must(t, os.WriteFile(filepath.Join(dir, "targets.ndjson"), rec, 0o644))
	must(t, os.Mkdir(filepath.Join(dir, "alb-logs"), 0o755))
	must(t, os.WriteFile(filepath.Join(dir, "alb-logs", "access.log"), log, 0o644))
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(log)
	must(t, zw.Close())
	must(t, os.WriteFile(filepath.Join(dir, "access.log.gz"), gz.Bytes(), 0o644))
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func exists(p string) bool { _, err := os.Stat(p); return err == nil }

// collectExamples gathers the examples from the docs and the help, each
// text once with every place that shows it.
func collectExamples(t *testing.T, root string) []example {
	var order []string
	where := map[string][]string{}
	add := func(text, src string) {
		text = stripComment(text)
		if _, ok := where[text]; !ok {
			order = append(order, text)
		}
		where[text] = append(where[text], src)
	}
	docs := []string{filepath.Join(root, "README.md")}
	filepath.WalkDir(filepath.Join(root, "docs"), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".md") {
			docs = append(docs, p)
		}
		return err
	})
	for _, p := range docs {
		data, err := os.ReadFile(p)
		must(t, err)
		rel, _ := filepath.Rel(root, p)
		for _, c := range markdownCommands(string(data)) {
			add(c.text, fmt.Sprintf("%s:%d", rel, c.line))
		}
	}
	for _, name := range subcommands(t) {
		for _, c := range helpExamples(t, name) {
			add(c, "rollsafe "+name+" --help")
		}
	}
	var out []example
	for _, text := range order {
		out = append(out, example{text: text, sources: where[text]})
	}
	return out
}

type docCommand struct {
	text string
	line int
}

var commandWords = regexp.MustCompile(`^(rollsafe|kubectl|go|helm|\./)`)

// markdownCommands: every line of a sh/bash/shell fence; in a plain fence,
// lines that start with `$ ` or a command word (the rest is output).
func markdownCommands(md string) []docCommand {
	var out []docCommand
	inFence, shell := false, false
	lines := strings.Split(md, "\n")
	for i := 0; i < len(lines); i++ {
		l := strings.TrimSpace(lines[i])
		if strings.HasPrefix(l, "```") {
			lang := strings.TrimPrefix(l, "```")
			inFence, shell = !inFence, lang == "sh" || lang == "bash" || lang == "shell"
			if inFence && lang != "" && !shell {
				i = skipFence(lines, i)
				inFence = false
			}
			continue
		}
		if !inFence || l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		start := i + 1
		text, next := joinContinued(lines, i)
		i = next
		if dollar, ok := strings.CutPrefix(text, "$ "); ok {
			text = dollar
		} else if !shell && !commandWords.MatchString(text) {
			continue
		}
		out = append(out, docCommand{text: text, line: start})
	}
	return out
}

// skipFence returns the index of the fence that closes the one at i.
func skipFence(lines []string, i int) int {
	for i++; i < len(lines) && !strings.HasPrefix(strings.TrimSpace(lines[i]), "```"); i++ {
	}
	return i
}

// joinContinued joins lines ending in a backslash, as the shell does, and
// returns the text and the index of its last line.
func joinContinued(lines []string, i int) (string, int) {
	text := strings.TrimSpace(lines[i])
	for strings.HasSuffix(text, `\`) && i+1 < len(lines) {
		i++
		text = strings.TrimSpace(strings.TrimSuffix(text, `\`)) + " " + strings.TrimSpace(lines[i])
	}
	return text, i
}

// subcommands lists `rollsafe --help`'s commands, help aside.
func subcommands(t *testing.T) []string {
	out, err := exec.Command(rollsafe, "--help").Output()
	must(t, err)
	var names []string
	in := false
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		l := sc.Text()
		switch {
		case l == "Available Commands:":
			in = true
		case in && strings.TrimSpace(l) == "":
			in = false
		case in:
			if name := strings.Fields(l)[0]; name != "help" && name != "completion" {
				names = append(names, name)
			}
		}
	}
	if len(names) == 0 {
		t.Fatalf("no commands in rollsafe --help:\n%s", out)
	}
	return names
}

// helpExamples is the Examples section of `rollsafe name --help`.
func helpExamples(t *testing.T, name string) []string {
	out, err := exec.Command(rollsafe, name, "--help").Output()
	must(t, err)
	_, section, ok := strings.Cut(string(out), "\nExamples:\n")
	if !ok {
		return nil
	}
	section, _, _ = strings.Cut(section, "\n\n")
	lines := strings.Split(section, "\n")
	var exs []string
	for i := 0; i < len(lines); i++ {
		text, next := joinContinued(lines, i)
		i = next
		exs = append(exs, text)
	}
	return exs
}
