package main

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/wharfd/wharfd/modules/config"
	"github.com/wharfd/wharfd/pipeline"
)

// BenchmarkBoot boots and stops the whole daemon graph in-process, each
// time on fresh directories, and reports the boot time (constructors and
// OnStart hooks, as the recorder measures it) and the median duration of
// every stage. In-process the daemon shares the host's network namespace,
// so the default bridge, the packet filter and ip_forward are turned off;
// the exec'd BenchmarkAPIBootToReady measures them, isolated.
func BenchmarkBoot(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("booting the daemon needs root")
	}
	perStage := map[string][]time.Duration{}
	var totals []time.Duration
	var order []string
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		dir := b.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "daemon.json"), []byte("{}"), 0o644); err != nil {
			b.Fatal(err)
		}
		flags, err := config.ParseFlags(daemonArgs(dir, "--bridge=none", "--iptables=false", "--ip-forward=false"))
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		bt, err := newBoot(flags, zap.NewNop(), zap.NewAtomicLevel())
		if err != nil {
			b.Fatal(err)
		}
		if err := bt.app.Start(context.Background()); err != nil {
			b.Fatal(bt.rec.Err(err))
		}
		b.StopTimer()
		rep := bt.rec.Report()
		if err := bt.app.Stop(context.Background()); err != nil {
			b.Fatal(err)
		}
		totals = append(totals, rep.Total)
		order = order[:0]
		for _, s := range rep.Stages {
			perStage[s.ID] = append(perStage[s.ID], s.Duration())
			order = append(order, s.ID)
		}
	}
	b.ReportMetric(float64(median(totals).Microseconds())/1000, "boot-ms")
	var lines []string
	for _, id := range order {
		lines = append(lines, id+" "+pipeline.FormatDuration(median(perStage[id])))
	}
	b.Logf("median per stage over %d boots: %s", b.N, strings.Join(lines, ", "))
}

func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}
