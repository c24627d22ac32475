// Command benchalb compares the lab's ALB stand-in with nginx as a reverse
// proxy in front of the same Go backend, on loopback, in one run: wrk
// throughput at equal connections, and added p99 latency at a constant
// 1000 req/s (open model: latency counts from the scheduled send time).
//
//	go build -o /tmp/benchalb ./bench/alb && /tmp/benchalb run
//
// The subcommands backend and alb are the processes it starts.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/rollsafe/rollsafe/lab/alb"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: benchalb run|backend|alb [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "backend":
		err = backend(os.Args[2:])
	case "alb":
		err = runALB(os.Args[2:])
	case "run":
		err = run(os.Args[2:])
	default:
		err = fmt.Errorf("unknown subcommand %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchalb:", err)
		var ee exitError
		if errors.As(err, &ee) {
			os.Exit(int(ee))
		}
		os.Exit(3)
	}
}

type exitError int

func (e exitError) Error() string { return "exit " + strconv.Itoa(int(e)) }

// backend is the Go server both proxies forward to.
func backend(args []string) error {
	fs := flag.NewFlagSet("backend", flag.ExitOnError)
	listen := fs.String("listen", "127.0.0.61:0", "address")
	fs.Parse(args)
	srv := &http.Server{Addr: *listen, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok\n")
	})}
	return srv.ListenAndServe()
}

// runALB runs the stand-in with the lab's settings (3 nodes, access log).
func runALB(args []string) error {
	fs := flag.NewFlagSet("alb", flag.ExitOnError)
	listen := fs.String("listen", "", "address")
	target := fs.String("target", "", "backend ip:port")
	logPath := fs.String("log", "", "access log file")
	fs.Parse(args)
	host, port, err := net.SplitHostPort(*target)
	if err != nil {
		return err
	}
	p, _ := strconv.Atoi(port)
	cfg := alb.DefaultConfig()
	cfg.Listen = *listen
	cfg.HealthCheck.Interval = 100 * time.Millisecond
	cfg.HealthCheck.HealthyThreshold = 1
	cfg.Propagation = 0
	if *logPath != "" {
		f, err := os.Create(*logPath)
		if err != nil {
			return err
		}
		defer f.Close()
		cfg.AccessLog = f
	}
	lb, err := alb.New(cfg)
	if err != nil {
		return err
	}
	if err := lb.Register(alb.Target{IP: host, Port: p}); err != nil {
		return err
	}
	select {} // killed by the driver
}

func run(args []string) error {
	fs := flag.NewFlagSet("run", flag.ExitOnError)
	dur := fs.Duration("duration", 5*time.Second, "length of each wrk run")
	conns := fs.Int("connections", 32, "wrk connections (equal for every proxy)")
	rate := fs.Int("rate", 1000, "constant request rate for the latency test")
	strict := fs.Bool("strict", false, "exit 1 when a target is missed")
	rounds := fs.Int("rounds", 3, "latency rounds, interleaved across proxies; the median p99 is reported (a noisy neighbour hits one round, not all)")
	fs.Parse(args)
	for _, tool := range []string{"nginx", "wrk"} {
		if _, err := exec.LookPath(tool); err != nil {
			fmt.Fprintf(os.Stderr, "benchalb: %s not found (Debian packages nginx-light and wrk)\n", tool)
			if os.Getenv("CI") == "true" {
				return exitError(1)
			}
			return exitError(0)
		}
	}
	tmp, err := os.MkdirTemp("", "benchalb")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	self, err := os.Executable()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var procs []*exec.Cmd
	defer func() {
		for _, p := range procs {
			p.Process.Kill()
			p.Wait()
		}
	}()
	start := func(name string, args ...string) error {
		cmd := exec.CommandContext(ctx, name, args...)
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			return err
		}
		procs = append(procs, cmd)
		return nil
	}

	backendAddr, albAddr, nginxAddr := freeAddr("127.0.0.61"), freeAddr("127.0.0.62"), freeAddr("127.0.0.63")
	if err := start(self, "backend", "-listen", backendAddr); err != nil {
		return err
	}
	if err := start(self, "alb", "-listen", albAddr, "-target", backendAddr, "-log", filepath.Join(tmp, "alb.log")); err != nil {
		return err
	}
	conf := filepath.Join(tmp, "nginx.conf")
	if err := os.WriteFile(conf, []byte(nginxConf(tmp, nginxAddr, backendAddr)), 0o644); err != nil {
		return err
	}
	if err := start("nginx", "-p", tmp, "-c", conf, "-e", filepath.Join(tmp, "error.log")); err != nil {
		return err
	}
	targets := []struct{ name, url string }{
		{"direct", "http://" + backendAddr + "/"},
		{"nginx", "http://" + nginxAddr + "/"},
		{"alb", "http://" + albAddr + "/"},
	}
	for _, t := range targets {
		if err := waitOK(t.url); err != nil {
			return fmt.Errorf("%s: %w", t.name, err)
		}
	}

	rps := map[string]float64{}
	for _, t := range targets {
		wrk(t.url, *conns, time.Second) // warm up keep-alive pools
		r, err := wrk(t.url, *conns, *dur)
		if err != nil {
			return fmt.Errorf("wrk %s: %w", t.name, err)
		}
		rps[t.name] = r
	}
	p50s, p99s := map[string][]time.Duration{}, map[string][]time.Duration{}
	for range *rounds {
		for _, t := range targets {
			h, err := constantRate(t.url, *rate, *dur)
			if err != nil {
				return fmt.Errorf("latency %s: %w", t.name, err)
			}
			p50s[t.name] = append(p50s[t.name], time.Duration(h.ValueAtQuantile(50))*time.Microsecond)
			p99s[t.name] = append(p99s[t.name], time.Duration(h.ValueAtQuantile(99))*time.Microsecond)
		}
	}
	p99 := map[string]time.Duration{}
	fmt.Printf("%-7s %12s %10s %10s   (wrk -t1 -c%d -d%s; constant %d req/s, %d rounds of %s, medians)\n", "proxy", "req/s", "p50", "p99", *conns, *dur, *rate, *rounds, *dur)
	for _, t := range targets {
		p99[t.name] = median(p99s[t.name])
		fmt.Printf("%-7s %12.0f %10s %10s   p99 per round %v\n", t.name, rps[t.name], median(p50s[t.name]), p99[t.name], p99s[t.name])
	}
	ratio := rps["alb"] / rps["nginx"]
	added := p99["alb"] - p99["direct"]
	addedNginx := p99["nginx"] - p99["direct"]
	ok1, ok2 := ratio >= 0.5, added <= time.Millisecond
	fmt.Printf("throughput alb/nginx: %.2f (target >= 0.50) %s\n", ratio, verdict(ok1))
	fmt.Printf("added p99 at %d req/s: alb %s, nginx %s (target alb <= 1ms) %s\n", *rate, added, addedNginx, verdict(ok2))
	if *strict && !(ok1 && ok2) {
		return exitError(1)
	}
	return nil
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

func verdict(ok bool) string {
	if ok {
		return "PASS"
	}
	return "MISS"
}

// freeAddr picks a free port on ip.
func freeAddr(ip string) string {
	ln, err := net.Listen("tcp", ip+":0")
	if err != nil {
		return ip + ":0"
	}
	defer ln.Close()
	return ln.Addr().String()
}

func nginxConf(dir, listen, upstream string) string {
	return fmt.Sprintf(`daemon off;
master_process on;
worker_processes auto;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path %[1]s/body;
  proxy_temp_path %[1]s/proxy;
  fastcgi_temp_path %[1]s/fastcgi;
  uwsgi_temp_path %[1]s/uwsgi;
  scgi_temp_path %[1]s/scgi;
  upstream backend { server %[3]s; keepalive 256; }
  server {
    listen %[2]s;
    location / {
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
`, dir, listen, upstream)
}

func waitOK(url string) error {
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return errors.New("not answering 200 within 15s")
}

var reqPerSec = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)

func wrk(url string, conns int, d time.Duration) (float64, error) {
	out, err := exec.Command("wrk", "-t1", "-c"+strconv.Itoa(conns), "-d"+strconv.Itoa(int(d.Seconds()))+"s", url).CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("%v: %s", err, out)
	}
	m := reqPerSec.FindSubmatch(out)
	if m == nil {
		return 0, fmt.Errorf("no Requests/sec in wrk output: %s", out)
	}
	if regexp.MustCompile(`Non-2xx or 3xx responses`).Match(out) {
		return 0, fmt.Errorf("errors during the run: %s", out)
	}
	return strconv.ParseFloat(string(m[1]), 64)
}

// constantRate sends rate req/s for d over keep-alive connections and
// records latency from each request's scheduled time, so a stall is
// charged to every request it delayed (no coordinated omission).
func constantRate(url string, rate int, d time.Duration) (*hdrhistogram.Histogram, error) {
	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	h := hdrhistogram.New(1, 10_000_000, 3)
	var mu sync.Mutex
	var firstErr error
	sched := make(chan time.Time, rate)
	var wg sync.WaitGroup
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for at := range sched {
				if w := time.Until(at); w > 0 {
					time.Sleep(w)
				}
				resp, err := client.Get(url)
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 200 {
						err = fmt.Errorf("status %d", resp.StatusCode)
					}
				}
				lat := time.Since(at)
				mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = err
				}
				h.RecordValue(lat.Microseconds())
				mu.Unlock()
			}
		}()
	}
	n := int(d.Seconds() * float64(rate))
	interval := time.Second / time.Duration(rate)
	t0 := time.Now().Add(10 * time.Millisecond)
	for i := range n {
		sched <- t0.Add(time.Duration(i) * interval)
	}
	close(sched)
	wg.Wait()
	return h, firstErr
}
