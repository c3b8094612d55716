package system

import (
	"bufio"
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"golang.org/x/sys/unix"
)

// hostFacts are the facts of this host that /info and /version report and
// that do not change while the daemon runs, read once at boot.
type hostFacts struct {
	kernel     string // uname release
	arch       string // uname machine
	osName     string // os-release PRETTY_NAME
	osVersion  string // os-release VERSION_ID
	ncpu       int
	memTotal   int64 // bytes
	cgroupV2   bool
	cgroupRoot string // /sys/fs/cgroup
	cgroup     cgroupCaps
	seccomp    bool
}

// cgroupCaps are the cgroup controllers the host offers containers, as
// /info's MemoryLimit, SwapLimit, CPU… fields.
type cgroupCaps struct {
	memory, swap, cpuShares, cpuCfs, cpuset, pids, oomKillDisable bool
}

// factPaths are the host files read, so tests point them elsewhere.
type factPaths struct {
	osRelease  []string // tried in order
	cgroupRoot string
	selfCgroup string
}

var defaultFactPaths = factPaths{
	osRelease:  []string{"/etc/os-release", "/usr/lib/os-release"},
	cgroupRoot: "/sys/fs/cgroup",
	selfCgroup: "/proc/self/cgroup",
}

// readHostFacts reads the host facts; what cannot be read stays zero.
func readHostFacts(p factPaths) hostFacts {
	f := hostFacts{ncpu: runtime.NumCPU(), arch: runtime.GOARCH, cgroupRoot: p.cgroupRoot}
	var uts unix.Utsname
	if unix.Uname(&uts) == nil {
		f.kernel = unix.ByteSliceToString(uts.Release[:])
		f.arch = unix.ByteSliceToString(uts.Machine[:])
	}
	var cpus unix.CPUSet
	if unix.SchedGetaffinity(0, &cpus) == nil && cpus.Count() > 0 {
		f.ncpu = cpus.Count()
	}
	var si unix.Sysinfo_t
	if unix.Sysinfo(&si) == nil {
		f.memTotal = int64(si.Totalram) * int64(si.Unit)
	}
	for _, path := range p.osRelease {
		if b, err := os.ReadFile(path); err == nil {
			f.osName, f.osVersion = parseOSRelease(b)
			break
		}
	}
	f.cgroupV2, f.cgroup = readCgroupCaps(p)
	// PR_GET_SECCOMP fails with EINVAL on a kernel without seccomp.
	_, err := unix.PrctlRetInt(unix.PR_GET_SECCOMP, 0, 0, 0, 0)
	f.seccomp = !errors.Is(err, unix.EINVAL)
	return f
}

// parseOSRelease returns PRETTY_NAME (or NAME, or "Linux") and VERSION_ID
// of an os-release file.
func parseOSRelease(b []byte) (name, version string) {
	vals := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		k, v, ok := strings.Cut(strings.TrimSpace(sc.Text()), "=")
		if !ok || strings.HasPrefix(k, "#") {
			continue
		}
		vals[k] = strings.Trim(v, `"'`)
	}
	name = vals["PRETTY_NAME"]
	if name == "" {
		name = vals["NAME"]
	}
	if name == "" {
		name = "Linux"
	}
	return name, vals["VERSION_ID"]
}

// readCgroupCaps detects the cgroup version and the controllers available:
// on v2 those enabled in the daemon's own cgroup (cgroup.controllers), on
// v1 the mounted hierarchies and their files, as dockerd's sysinfo does.
func readCgroupCaps(p factPaths) (v2 bool, caps cgroupCaps) {
	var st unix.Statfs_t
	if unix.Statfs(p.cgroupRoot, &st) == nil && st.Type == unix.CGROUP2_SUPER_MAGIC {
		v2 = true
	} else if _, err := os.Stat(filepath.Join(p.cgroupRoot, "cgroup.controllers")); err == nil {
		v2 = true
	}
	if v2 {
		ctrl := readControllers(p)
		caps.memory, caps.swap = ctrl["memory"], ctrl["memory"]
		caps.cpuShares, caps.cpuCfs = ctrl["cpu"], ctrl["cpu"]
		caps.cpuset, caps.pids = ctrl["cpuset"], ctrl["pids"]
		return v2, caps
	}
	exists := func(parts ...string) bool {
		_, err := os.Stat(filepath.Join(append([]string{p.cgroupRoot}, parts...)...))
		return err == nil
	}
	caps.memory = exists("memory", "memory.limit_in_bytes")
	caps.swap = exists("memory", "memory.memsw.limit_in_bytes")
	caps.oomKillDisable = exists("memory", "memory.oom_control")
	caps.cpuShares = exists("cpu", "cpu.shares")
	caps.cpuCfs = exists("cpu", "cpu.cfs_quota_us")
	caps.cpuset = exists("cpuset", "cpuset.cpus")
	caps.pids = exists("pids")
	return false, caps
}

// readControllers returns the cgroup v2 controllers of the daemon's own
// cgroup, or of the root when that cannot be read.
func readControllers(p factPaths) map[string]bool {
	dirs := []string{p.cgroupRoot}
	if b, err := os.ReadFile(p.selfCgroup); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if rel, ok := strings.CutPrefix(line, "0::"); ok {
				dirs = append([]string{filepath.Join(p.cgroupRoot, filepath.Clean("/"+rel))}, dirs...)
			}
		}
	}
	for _, d := range dirs {
		b, err := os.ReadFile(filepath.Join(d, "cgroup.controllers"))
		if err != nil {
			continue
		}
		out := map[string]bool{}
		for _, c := range strings.Fields(string(b)) {
			out[c] = true
		}
		return out
	}
	return map[string]bool{}
}

// ipv4Forwarding reads net.ipv4.ip_forward.
func ipv4Forwarding() bool {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_forward")
	return err == nil && strings.TrimSpace(string(b)) == "1"
}

// openFDs counts the daemon's open file descriptors, /info's NFd.
func openFDs() int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return 0
	}
	return len(ents)
}
