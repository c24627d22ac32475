package workload

import (
	"path"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// PreStop is a container's resolved preStop hook.
type PreStop struct {
	// Kind is "sleep" (native lifecycle.preStop.sleep), "exec", "httpGet",
	// or "" when there is no hook.
	Kind string `json:"kind,omitempty"`
	// Duration is how long the hook holds SIGTERM back, when Known: the
	// native sleep, or the sleeps found in an exec command.
	Duration time.Duration `json:"duration"`
	Known    bool          `json:"known"`
	// Command is the exec command or httpGet path, for messages.
	Command string `json:"command,omitempty"`
}

// ParsePreStop resolves a lifecycle handler: the native sleep action, or an
// exec command whose sleeps rollsafe can read — `sleep N`, `sleep Ns`,
// `/bin/sleep N`, `sh -c "sleep 40"`, `sleep 40 && nginx -s quit` (sleeps in
// a shell script are added up). An exec or httpGet hook whose length cannot
// be read has Known false: rules that need the number stay silent rather
// than guess.
func ParsePreStop(h *corev1.LifecycleHandler) PreStop {
	switch {
	case h == nil:
		return PreStop{}
	case h.Sleep != nil:
		return PreStop{Kind: "sleep", Duration: time.Duration(h.Sleep.Seconds) * time.Second, Known: true,
			Command: "sleep " + strconv.FormatInt(h.Sleep.Seconds, 10)}
	case h.HTTPGet != nil:
		return PreStop{Kind: "httpGet", Command: "GET " + h.HTTPGet.Path}
	case h.Exec != nil:
		p := PreStop{Kind: "exec", Command: strings.Join(h.Exec.Command, " ")}
		p.Duration, p.Known = execSleep(h.Exec.Command)
		return p
	}
	return PreStop{Kind: "other"}
}

// execSleep reads the sleep time out of an exec command.
func execSleep(argv []string) (time.Duration, bool) {
	if len(argv) == 0 {
		return 0, false
	}
	switch path.Base(argv[0]) {
	case "sleep":
		return sleepArgs(argv[1:])
	case "sh", "bash", "ash", "dash", "zsh":
		for i := 1; i+1 < len(argv); i++ {
			if strings.HasPrefix(argv[i], "-") && strings.Contains(argv[i], "c") {
				return scriptSleep(argv[i+1])
			}
		}
	}
	return 0, false
}

// scriptSleep adds up the sleep commands of a shell script. Other commands
// count as instant: a script with no sleep at all is unknown.
func scriptSleep(script string) (time.Duration, bool) {
	var total time.Duration
	found := false
	for _, stmt := range splitShell(script) {
		f := strings.Fields(stmt)
		if len(f) == 0 || path.Base(f[0]) != "sleep" {
			continue
		}
		d, ok := sleepArgs(f[1:])
		if !ok {
			return 0, false // sleep $VAR: unknowable from the manifest
		}
		total += d
		found = true
	}
	return total, found
}

// splitShell cuts a script at ;, &&, || and newlines; enough for the
// one-liners preStop hooks are, without pretending to be a shell.
func splitShell(s string) []string {
	return strings.FieldsFunc(strings.NewReplacer("&&", ";", "||", ";", "\n", ";", "&", ";").Replace(s),
		func(r rune) bool { return r == ';' })
}

// sleepArgs parses GNU sleep's arguments: numbers with an optional s, m, h
// or d suffix, added up.
func sleepArgs(args []string) (time.Duration, bool) {
	if len(args) == 0 {
		return 0, false
	}
	var total time.Duration
	for _, a := range args {
		a = strings.Trim(a, `"'`)
		unit := time.Second
		switch {
		case strings.HasSuffix(a, "s"):
			a = strings.TrimSuffix(a, "s")
		case strings.HasSuffix(a, "m"):
			a, unit = strings.TrimSuffix(a, "m"), time.Minute
		case strings.HasSuffix(a, "h"):
			a, unit = strings.TrimSuffix(a, "h"), time.Hour
		case strings.HasSuffix(a, "d"):
			a, unit = strings.TrimSuffix(a, "d"), 24*time.Hour
		}
		v, err := strconv.ParseFloat(a, 64)
		if err != nil || v < 0 || v > 1e6 {
			return 0, false
		}
		total += time.Duration(v * float64(unit))
	}
	return total, true
}
