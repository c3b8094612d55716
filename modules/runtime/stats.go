package runtime

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/opencontainers/cgroups"
)

// Stats are a container's resource usage read from its cgroups, shaped
// as the Engine API's stats (GET /containers/{id}/stats) so the router
// maps them field by field. Network statistics come with the network
// module.
type Stats struct {
	// Read is when the statistics were read.
	Read time.Time
	// CPU is the CPU usage.
	CPU CPUStats
	// Memory is the memory usage.
	Memory MemoryStats
	// Pids is the number of processes.
	Pids PidsStats
	// Blkio is the block I/O, per device.
	Blkio BlkioStats
}

// CPUStats are CPU times in nanoseconds.
type CPUStats struct {
	// TotalUsage is the container's CPU time.
	TotalUsage uint64
	// PercpuUsage is the container's CPU time per CPU (cgroup v1 only).
	PercpuUsage []uint64
	// UsageInKernelmode and UsageInUsermode split TotalUsage.
	UsageInKernelmode, UsageInUsermode uint64
	// SystemUsage is the host's CPU time since boot, all CPUs summed
	// (/proc/stat), against which clients compute a percentage.
	SystemUsage uint64
	// OnlineCPUs is the number of online CPUs of the host.
	OnlineCPUs uint32
	// ThrottlingPeriods, ThrottledPeriods and ThrottledTime (ns) are the
	// CFS quota's throttling.
	ThrottlingPeriods, ThrottledPeriods, ThrottledTime uint64
}

// MemoryStats are memory figures in bytes.
type MemoryStats struct {
	// Usage is the memory in use, page cache included.
	Usage uint64
	// MaxUsage is the highest Usage seen (cgroup v1 only).
	MaxUsage uint64
	// Failcnt counts the times the limit was hit (cgroup v1 only).
	Failcnt uint64
	// Limit is the memory limit; with none, the cgroup's (the host's
	// memory or math.MaxInt64 rounded to pages).
	Limit uint64
	// Stats are memory.stat's fields.
	Stats map[string]uint64
}

// PidsStats count processes.
type PidsStats struct {
	// Current is the number of processes and threads.
	Current uint64
	// Limit is the maximum, 0 for none.
	Limit uint64
}

// BlkioStats are block I/O figures per device and operation, as cgroup
// v1's blkio files (v2's io.stat mapped onto them).
type BlkioStats struct {
	// Each list is the cgroup's blkio file of the same name: bytes,
	// operations, queued operations, service and wait time (ns),
	// merged operations, time (ms) and sectors, per device and op.
	IoServiceBytesRecursive []BlkioEntry
	IoServicedRecursive     []BlkioEntry
	IoQueuedRecursive       []BlkioEntry
	IoServiceTimeRecursive  []BlkioEntry
	IoWaitTimeRecursive     []BlkioEntry
	IoMergedRecursive       []BlkioEntry
	IoTimeRecursive         []BlkioEntry
	SectorsRecursive        []BlkioEntry
}

// BlkioEntry is one device's figure for an operation ("Read", "Write",
// "Total", …).
type BlkioEntry struct {
	// Major and Minor are the device's numbers.
	Major, Minor uint64
	// Op is the operation, as the kernel names it.
	Op string
	// Value is the figure, in the list's unit.
	Value uint64
}

// Stats reads the container's resource usage from its cgroups.
// ErrNotRunning when it is not running.
func (c *Container) Stats() (*Stats, error) {
	if err := c.running(); err != nil {
		return nil, err
	}
	st, err := c.lc.Stats()
	if err != nil {
		return nil, fmt.Errorf("stats of %s: %w", c.id, err)
	}
	cg := st.CgroupStats
	if cg == nil {
		cg = &cgroups.Stats{}
	}
	out := &Stats{Read: time.Now()}
	cpu := cg.CpuStats
	out.CPU = CPUStats{
		TotalUsage:        cpu.CpuUsage.TotalUsage,
		PercpuUsage:       cpu.CpuUsage.PercpuUsage,
		UsageInKernelmode: cpu.CpuUsage.UsageInKernelmode,
		UsageInUsermode:   cpu.CpuUsage.UsageInUsermode,
		ThrottlingPeriods: cpu.ThrottlingData.Periods,
		ThrottledPeriods:  cpu.ThrottlingData.ThrottledPeriods,
		ThrottledTime:     cpu.ThrottlingData.ThrottledTime,
	}
	out.CPU.SystemUsage, out.CPU.OnlineCPUs, _ = systemCPUUsage()
	mem := cg.MemoryStats
	out.Memory = MemoryStats{
		Usage:    mem.Usage.Usage,
		MaxUsage: mem.Usage.MaxUsage,
		Failcnt:  mem.Usage.Failcnt,
		Limit:    mem.Usage.Limit,
		Stats:    mem.Stats,
	}
	out.Pids = PidsStats{Current: cg.PidsStats.Current, Limit: cg.PidsStats.Limit}
	b := cg.BlkioStats
	out.Blkio = BlkioStats{
		IoServiceBytesRecursive: blkio(b.IoServiceBytesRecursive),
		IoServicedRecursive:     blkio(b.IoServicedRecursive),
		IoQueuedRecursive:       blkio(b.IoQueuedRecursive),
		IoServiceTimeRecursive:  blkio(b.IoServiceTimeRecursive),
		IoWaitTimeRecursive:     blkio(b.IoWaitTimeRecursive),
		IoMergedRecursive:       blkio(b.IoMergedRecursive),
		IoTimeRecursive:         blkio(b.IoTimeRecursive),
		SectorsRecursive:        blkio(b.SectorsRecursive),
	}
	return out, nil
}

func blkio(in []cgroups.BlkioStatEntry) []BlkioEntry {
	if len(in) == 0 {
		return nil
	}
	out := make([]BlkioEntry, len(in))
	for i, e := range in {
		out[i] = BlkioEntry{Major: e.Major, Minor: e.Minor, Op: e.Op, Value: e.Value}
	}
	return out
}

// clockTicks is USER_HZ, the unit of /proc/stat's times: 100 on every
// Linux architecture Go supports.
const clockTicks = 100

// systemCPUUsage returns the host's CPU time in nanoseconds (the sum of
// /proc/stat's "cpu" line) and the number of online CPUs (its cpuN
// lines), as dockerd's stats collector.
func systemCPUUsage() (uint64, uint32, error) {
	f, err := os.Open("/proc/stat")
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	var total uint64
	var cpus uint32
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 || !strings.HasPrefix(fields[0], "cpu") {
			continue
		}
		if fields[0] != "cpu" {
			cpus++
			continue
		}
		for _, v := range fields[1:min(len(fields), 8)] {
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				return 0, 0, fmt.Errorf("/proc/stat: %w", err)
			}
			total += n
		}
	}
	return total * (1e9 / clockTicks), cpus, sc.Err()
}
