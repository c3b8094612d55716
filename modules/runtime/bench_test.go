package runtime

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"
)

// BenchmarkRunTrue measures one container's whole life through the
// runtime: create, start, wait and destroy of `true` on a busybox rootfs
// with dockerd's default spec. It reports the median (ms/median), to
// compare with the daemon's `docker run --rm busybox true`.
func BenchmarkRunTrue(b *testing.B) {
	r := newTestRuntime(b)
	spec := testSpec(b, []string{"true"}, nil)
	ctx := context.Background()
	durations := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		start := time.Now()
		c, err := r.Create(ctx, fmt.Sprintf("bench%d", i), spec)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := c.Start(ctx, Stdio{}); err != nil {
			b.Fatal(err)
		}
		if st, err := c.Wait(ctx); err != nil || st.Code != 0 {
			b.Fatalf("exit %+v %v", st, err)
		}
		if err := c.Destroy(ctx); err != nil {
			b.Fatal(err)
		}
		durations = append(durations, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(durations)
	b.ReportMetric(float64(durations[len(durations)/2].Microseconds())/1000, "ms/median")
}
