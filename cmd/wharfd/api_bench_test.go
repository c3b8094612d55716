package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// The API benchmarks measure what DESIGN's aims compare with dockerd:
// boot-to-ready (exec → first 200 from /_ping), idle RSS after boot, and
// requests/s with p50/p99 latency for GET /_ping and GET /version over the
// unix socket at 1, 16 and 64 concurrent clients. When dockerd is on PATH
// the same load runs against it; otherwise the benchmark says so.

// benchDaemon is a daemon started for a benchmark.
type benchDaemon struct {
	cmd  *exec.Cmd
	sock string
}

// startBench execs bin with args (its socket at sock) and returns once
// GET /_ping answers 200, with the time that took.
func startBench(b *testing.B, bin string, sock string, args ...string) (*benchDaemon, time.Duration) {
	b.Helper()
	start := time.Now()
	cmd := exec.Command(bin, args...)
	isolate(cmd)
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	d := &benchDaemon{cmd: cmd, sock: sock}
	b.Cleanup(d.stop)
	c := unixClient(sock)
	defer c.CloseIdleConnections()
	deadline := time.Now().Add(time.Minute)
	for {
		// The socket is bound early: once it exists, the request waits in
		// the backlog until the API serves.
		resp, err := c.Get("http://d/_ping")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return d, time.Since(start)
			}
		}
		if time.Now().After(deadline) {
			b.Fatalf("%s did not answer /_ping within a minute: %v", bin, err)
		}
		time.Sleep(200 * time.Microsecond) // the socket file does not exist yet
	}
}

func (d *benchDaemon) stop() {
	if d.cmd.ProcessState != nil {
		return
	}
	_ = d.cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { _ = d.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		_ = d.cmd.Process.Kill()
		<-done
	}
}

// rssKiB reads the resident set size of pid and of its children (dockerd
// runs containerd as one), in KiB.
func rssKiB(pid int) int64 {
	var total int64
	pids := []int{pid}
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid)); err == nil {
		for _, f := range strings.Fields(string(b)) {
			if n, err := strconv.Atoi(f); err == nil {
				pids = append(pids, n)
			}
		}
	}
	for _, p := range pids {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p))
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(strings.NewReader(string(b)))
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
				n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
				total += n
			}
		}
	}
	return total
}

func unixClient(sock string) *http.Client {
	return &http.Client{Transport: &http.Transport{
		MaxIdleConnsPerHost: 128,
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		},
	}}
}

// engines are the daemons benchmarked: wharfd always, dockerd when
// installed. start returns a daemon serving on a socket in a fresh dir.
type engine struct {
	name  string
	start func(b *testing.B) (*benchDaemon, time.Duration)
}

func engines(b *testing.B) []engine {
	b.Helper()
	if os.Geteuid() != 0 {
		b.Skip("needs root: the daemon refuses to start otherwise")
	}
	es := []engine{{name: "wharfd", start: func(b *testing.B) (*benchDaemon, time.Duration) {
		dir := b.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "daemon.json"), []byte("{}"), 0o644); err != nil {
			b.Fatal(err)
		}
		sock := filepath.Join(dir, "wharfd.sock")
		return startBench(b, wharfdBin, sock, daemonArgs(dir)...)
	}}}
	if dockerd, err := exec.LookPath("dockerd"); err == nil {
		es = append(es, engine{name: "dockerd", start: func(b *testing.B) (*benchDaemon, time.Duration) {
			dir := b.TempDir()
			sock := filepath.Join(dir, "docker.sock")
			return startBench(b, dockerd, sock, "--data-root", filepath.Join(dir, "root"), "--exec-root", filepath.Join(dir, "exec"),
				"--pidfile", filepath.Join(dir, "docker.pid"), "-H", "unix://"+sock, "--bridge=none", "--iptables=false")
		}})
	} else {
		b.Log("dockerd is not installed: no comparison")
	}
	return es
}

// BenchmarkAPIBootToReady execs the daemon and waits for the first 200
// from /_ping; it also reports the idle RSS once booted.
func BenchmarkAPIBootToReady(b *testing.B) {
	for _, e := range engines(b) {
		b.Run(e.name, func(b *testing.B) {
			var total time.Duration
			var rss int64
			for range b.N {
				d, took := e.start(b)
				total += took
				rss = max(rss, rssKiB(d.cmd.Process.Pid))
				d.stop()
			}
			b.ReportMetric(float64(total.Microseconds())/1000/float64(b.N), "ms/boot")
			b.ReportMetric(float64(rss)/1024, "MiB-rss")
			b.ReportMetric(0, "ns/op")
		})
	}
}

// requestsPerRun bounds each load run.
const requestsPerRun = 1000

// BenchmarkAPIRequests runs GET /_ping and GET /version over the unix
// socket with 1, 16 and 64 concurrent clients, each run requestsPerRun
// requests; it reports requests/s and the p50 and p99 latencies.
func BenchmarkAPIRequests(b *testing.B) {
	for _, e := range engines(b) {
		b.Run(e.name, func(b *testing.B) {
			d, _ := e.start(b)
			for _, path := range []string{"/_ping", "/version"} {
				for _, clients := range []int{1, 16, 64} {
					b.Run(fmt.Sprintf("%s/c%d", strings.TrimPrefix(path, "/"), clients), func(b *testing.B) {
						var lat []time.Duration
						var elapsed time.Duration
						for range b.N {
							l, el := load(b, d.sock, path, clients, requestsPerRun)
							lat = append(lat, l...)
							elapsed += el
						}
						slices.Sort(lat)
						b.ReportMetric(float64(len(lat))/elapsed.Seconds(), "req/s")
						b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
						b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
						b.ReportMetric(0, "ns/op")
					})
				}
			}
		})
	}
}

// load sends n requests from clients goroutines and returns each
// request's latency and the run's wall time.
func load(b *testing.B, sock, path string, clients, n int) ([]time.Duration, time.Duration) {
	b.Helper()
	c := unixClient(sock)
	defer c.CloseIdleConnections()
	lat := make([]time.Duration, n)
	next := make(chan int, n)
	for i := range n {
		next <- i
	}
	close(next)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	start := time.Now()
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				t0 := time.Now()
				resp, err := c.Get("http://d" + path)
				if err == nil {
					_, err = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						err = fmt.Errorf("status %d", resp.StatusCode)
					}
				}
				if err != nil {
					mu.Lock()
					firstErr = err
					mu.Unlock()
					return
				}
				lat[i] = time.Since(t0)
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		b.Fatal(firstErr)
	}
	return lat, time.Since(start)
}
