package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wharfd/wharfd/internal/testimage"
)

// The container benchmarks measure what the containers issue asks for:
// `docker run --rm busybox true` latency (median), the throughput of 50
// concurrent run-and-remove, and the daemon's RSS with 50 running
// containers, through the real CLI. With dockerd installed the same runs
// against it (see engines); otherwise the benchmark says so.

// benchCLI runs the docker CLI against the daemon on sock.
func benchCLI(b *testing.B, sock string, stdin []byte, args ...string) string {
	cmd := exec.Command("docker", args...)
	cmd.Env = []string{"DOCKER_HOST=unix://" + sock, "DOCKER_CONFIG=" + b.TempDir(), "PATH=" + os.Getenv("PATH"), "HOME=" + os.TempDir()}
	cmd.Stdin = bytes.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	if err != nil {
		b.Errorf("docker %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

// ownRSSKiB is the daemon's own resident set size (not its children's:
// the containers are children of wharfd).
func ownRSSKiB(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n
		}
	}
	return 0
}

// BenchmarkContainerRun reports, per engine: run-rm (ms, median of b.N
// runs of `docker run --rm busybox true`), concurrent-50 (run-and-remove
// per second with 50 at once, at most two rounds) and rss-50 (the
// daemon's RSS in MiB with 50 containers running).
func BenchmarkContainerRun(b *testing.B) {
	if _, err := exec.LookPath("docker"); err != nil {
		b.Skip("docker CLI not installed")
	}
	for _, e := range engines(b) {
		b.Run(e.name, func(b *testing.B) {
			d, _ := e.start(b)
			benchCLI(b, d.sock, testimage.DockerArchive(b, testimage.BusyboxImage(b, "busybox:latest")), "load")
			b.Run("run-rm", func(b *testing.B) {
				lat := make([]time.Duration, 0, b.N)
				for range b.N {
					start := time.Now()
					benchCLI(b, d.sock, nil, "run", "--rm", "busybox", "true")
					lat = append(lat, time.Since(start))
				}
				slices.Sort(lat)
				b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "ms-median")
				b.ReportMetric(0, "ns/op")
			})
			b.Run("concurrent-50", func(b *testing.B) {
				var elapsed time.Duration
				rounds := min(b.N, 2)
				for range rounds {
					start := time.Now()
					var wg sync.WaitGroup
					for range 50 {
						wg.Go(func() { benchCLI(b, d.sock, nil, "run", "--rm", "busybox", "true") })
					}
					wg.Wait()
					elapsed += time.Since(start)
				}
				b.ReportMetric(float64(50*rounds)/elapsed.Seconds(), "runs/s")
				b.ReportMetric(0, "ns/op")
			})
			b.Run("rss-50", func(b *testing.B) {
				before := ownRSSKiB(d.cmd.Process.Pid)
				var wg sync.WaitGroup
				for range 50 {
					wg.Go(func() { benchCLI(b, d.sock, nil, "run", "-d", "--stop-timeout", "1", "busybox", "sleep", "1000") })
				}
				wg.Wait()
				after := ownRSSKiB(d.cmd.Process.Pid)
				for range b.N {
				}
				b.ReportMetric(float64(before)/1024, "MiB-idle")
				b.ReportMetric(float64(after)/1024, "MiB-50-running")
				b.ReportMetric(0, "ns/op")
				ids := strings.Fields(benchCLI(b, d.sock, nil, "ps", "-aq"))
				benchCLI(b, d.sock, nil, append([]string{"rm", "-f"}, ids...)...)
			})
		})
	}
}
