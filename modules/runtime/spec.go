package runtime

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/containerd/errdefs"
	profiles "github.com/moby/profiles/seccomp"
	"github.com/moby/sys/capability"
	"github.com/opencontainers/cgroups"
	lcseccomp "github.com/opencontainers/runc/libcontainer/seccomp"
	"github.com/opencontainers/runtime-spec/specs-go"
)

// Defaults of SpecOptions, as dockerd's.
const (
	// DefaultShmSize is the size of /dev/shm when SpecOptions.ShmSize is
	// 0: 64 MiB, dockerd's default --default-shm-size.
	DefaultShmSize int64 = 64 << 20
	// DefaultPathEnv is the PATH given to a process whose environment
	// has none, dockerd's default.
	DefaultPathEnv = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	// DefaultCPUPeriod is the CFS period, in microseconds, that
	// SpecOptions.NanoCPUs is expressed against (dockerd's 100ms).
	DefaultCPUPeriod uint64 = 100000

	// SeccompUnconfined is the SpecOptions.SeccompProfile value that turns
	// seccomp off (docker run --security-opt seccomp=unconfined).
	SeccompUnconfined = "unconfined"
	// AppArmorUnconfined is the SpecOptions.AppArmorProfile value that
	// runs the container without an AppArmor profile.
	AppArmorUnconfined = "unconfined"

	// NamespaceHost shares the host's namespace (SpecOptions.Network,
	// SpecOptions.CgroupNamespace); NamespacePrivate gives the container
	// its own.
	NamespaceHost    = "host"
	NamespacePrivate = "private"
)

// DefaultCapabilities returns dockerd's default capability set (its
// caps.DefaultCapabilities), the bounding, effective and permitted set
// of an unprivileged container, as a new slice.
func DefaultCapabilities() []string {
	return []string{
		"CAP_CHOWN",
		"CAP_DAC_OVERRIDE",
		"CAP_FSETID",
		"CAP_FOWNER",
		"CAP_MKNOD",
		"CAP_NET_RAW",
		"CAP_SETGID",
		"CAP_SETUID",
		"CAP_SETFCAP",
		"CAP_SETPCAP",
		"CAP_NET_BIND_SERVICE",
		"CAP_SYS_CHROOT",
		"CAP_KILL",
		"CAP_AUDIT_WRITE",
	}
}

// DefaultMaskedPaths returns the paths dockerd masks in an unprivileged
// container (bind-mounted over with /dev/null or an empty read-only
// tmpfs), including the thermal_throttle directories of the host's CPUs.
func DefaultMaskedPaths() []string {
	paths := []string{
		"/proc/acpi",
		"/proc/asound",
		"/proc/interrupts",
		"/proc/kcore",
		"/proc/keys",
		"/proc/latency_stats",
		"/proc/sched_debug",
		"/proc/scsi",
		"/proc/timer_list",
		"/proc/timer_stats",
		"/sys/devices/virtual/powercap",
		"/sys/firmware",
	}
	cpus, _ := filepath.Glob("/sys/devices/system/cpu/cpu[0-9]*/thermal_throttle")
	slices.Sort(cpus)
	return append(paths, cpus...)
}

// DefaultReadonlyPaths returns the paths dockerd makes read-only in an
// unprivileged container.
func DefaultReadonlyPaths() []string {
	return []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"}
}

// SpecOptions describe a container in the terms of Docker's Config and
// HostConfig; DefaultSpec turns them into an OCI runtime spec with
// dockerd's defaults. Zero values mean dockerd's default.
type SpecOptions struct {
	// Rootfs is the absolute host path of the container's root
	// filesystem (required).
	Rootfs string
	// ReadonlyRootfs mounts the root filesystem read-only (--read-only).
	ReadonlyRootfs bool

	// Args are the command and its arguments (required).
	Args []string
	// Env are KEY=value pairs; DefaultPathEnv is added when there is no
	// PATH.
	Env []string
	// Cwd is the working directory, absolute; "/" when empty.
	Cwd string
	// UID, GID and AdditionalGIDs are the process's user and groups, as
	// numbers (the daemon resolves names in the image's /etc/passwd).
	UID, GID       uint32
	AdditionalGIDs []uint32
	// Terminal gives the process a pseudo-terminal (-t); ConsoleWidth
	// and ConsoleHeight are its initial size in characters (0: the
	// kernel's default).
	Terminal                    bool
	ConsoleWidth, ConsoleHeight uint

	// Hostname and Domainname are set in the container's UTS namespace.
	Hostname, Domainname string

	// Privileged gives every capability, no seccomp, no masked or
	// read-only paths, writable /sys and /sys/fs/cgroup and access to
	// every device through the device cgroup (--privileged).
	Privileged bool
	// CapAdd and CapDrop adjust DefaultCapabilities, as dockerd: names
	// with or without CAP_, any case, or "ALL". An unknown name is an
	// invalid-argument error (`unknown capability: "CAP_X"`).
	CapAdd, CapDrop []string
	// NoNewPrivileges sets no_new_privs (--security-opt no-new-privileges).
	NoNewPrivileges bool
	// SeccompProfile is "" for dockerd's default profile, SeccompUnconfined
	// for none, or a profile in JSON (--security-opt seccomp=<file>).
	SeccompProfile string
	// AppArmorProfile is the name of a loaded AppArmor profile, or "" or
	// AppArmorUnconfined for none. The daemon passes docker-default (or
	// its own) only when the host has AppArmor.
	AppArmorProfile string
	// OOMScoreAdj is the process's oom_score_adj, -1000..1000.
	OOMScoreAdj int

	// ShmSize is the size of /dev/shm in bytes; 0 means DefaultShmSize.
	ShmSize int64
	// Tmpfs are extra tmpfs mounts, path → comma-separated mount options
	// (--tmpfs /run:size=64m); noexec, nosuid and nodev are the default.
	Tmpfs map[string]string
	// Mounts are extra mounts (binds, volumes); one at the destination of
	// a default mount (such as /dev/shm) replaces it.
	Mounts []specs.Mount
	// Sysctls are namespaced sysctls (--sysctl).
	Sysctls map[string]string
	// Rlimits are the process's resource limits (--ulimit), such as
	// {Type: "RLIMIT_NOFILE", Soft: 1024, Hard: 2048}. Runtime.Create
	// clamps a limit above the host's hard limit, with a warning.
	Rlimits []specs.POSIXRlimit

	// Network is "" or NamespacePrivate for a new network namespace
	// (only loopback in it), NamespaceHost for the host's, or the path
	// of a namespace to join (/proc/<pid>/ns/net, /run/netns/<name>).
	Network string
	// IPC is "" or NamespacePrivate for a new IPC namespace (dockerd's
	// default "private"), NamespaceHost for the host's, or a path.
	IPC string
	// PID is "" or NamespacePrivate for a new PID namespace,
	// NamespaceHost for the host's, or a path.
	PID string
	// CgroupNamespace is "" for dockerd's default (private with cgroup
	// v2, host with v1), NamespaceHost or NamespacePrivate.
	CgroupNamespace string
	// CgroupsPath is the container's cgroup: with cgroupfs a path
	// ("/wharfd/<id>"), with systemd "slice:prefix:name"; "" lets
	// Runtime.Create choose one under its cgroup parent.
	CgroupsPath string

	// Memory is the memory limit in bytes (0: none). With Memory set and
	// MemorySwap 0, MemorySwap is twice Memory, as dockerd.
	Memory int64
	// MemorySwap is the memory+swap limit in bytes; -1 is unlimited.
	MemorySwap int64
	// MemoryReservation is the soft memory limit in bytes.
	MemoryReservation int64
	// OOMKillDisable turns the OOM killer off for the container.
	OOMKillDisable bool
	// NanoCPUs is the CPU quota in billionths of a CPU (--cpus 1.5 is
	// 1.5e9), applied as a CFS quota over DefaultCPUPeriod.
	NanoCPUs int64
	// CPUShares is the relative CPU weight (cgroup v1 shares, converted
	// to cpu.weight on v2).
	CPUShares uint64
	// CPUQuota and CPUPeriod are the CFS quota and period in
	// microseconds (--cpu-quota, --cpu-period); NanoCPUs wins.
	CPUQuota  int64
	CPUPeriod uint64
	// CpusetCpus and CpusetMems are the allowed CPUs and memory nodes
	// ("0-1,3").
	CpusetCpus, CpusetMems string
	// PidsLimit is the maximum number of processes; 0 is unset and a
	// negative value unlimited, as dockerd's --pids-limit.
	PidsLimit int64
	// BlkioWeight is the relative block I/O weight, 10..1000 (0: unset).
	BlkioWeight uint16
}

// DefaultSpec builds the OCI runtime spec of a container from o with
// dockerd's defaults (its DefaultLinuxSpec and the options the daemon
// applies on top): the default capability set adjusted by CapAdd and
// CapDrop, masked and read-only paths, the default seccomp profile, the
// mounts of /proc, /dev, /dev/pts, /sys, /sys/fs/cgroup, /dev/mqueue and
// a /dev/shm of ShmSize, new mount, network, UTS, PID and IPC namespaces,
// and the device cgroup rules dockerd allows.
//
// The warnings are dockerd's for settings this host cannot honour but
// which do not prevent a start (no seccomp support: the default profile
// is left out; no swap accounting: MemorySwap is ignored). Bad options
// are errdefs invalid-argument errors.
func DefaultSpec(o SpecOptions) (*specs.Spec, []string, error) {
	if o.Rootfs == "" || !filepath.IsAbs(o.Rootfs) {
		return nil, nil, fmt.Errorf("rootfs %q: must be an absolute path: %w", o.Rootfs, errdefs.ErrInvalidArgument)
	}
	if len(o.Args) == 0 {
		return nil, nil, fmt.Errorf("no command specified: %w", errdefs.ErrInvalidArgument)
	}
	var warnings []string
	cwd := o.Cwd
	if cwd == "" {
		cwd = "/"
	}
	if !filepath.IsAbs(cwd) {
		return nil, nil, fmt.Errorf("the working directory '%s' is invalid, it needs to be an absolute path: %w", cwd, errdefs.ErrInvalidArgument)
	}
	env := slices.Clone(o.Env)
	if !slices.ContainsFunc(env, func(e string) bool { return strings.HasPrefix(e, "PATH=") }) {
		env = append([]string{"PATH=" + DefaultPathEnv}, env...)
	}

	capList, err := tweakCapabilities(o.CapAdd, o.CapDrop, o.Privileged)
	if err != nil {
		return nil, nil, err
	}
	s := &specs.Spec{
		Version: specs.Version,
		Root:    &specs.Root{Path: o.Rootfs, Readonly: o.ReadonlyRootfs},
		Process: &specs.Process{
			Terminal: o.Terminal,
			Args:     slices.Clone(o.Args),
			Env:      env,
			Cwd:      cwd,
			User: specs.User{
				UID:            o.UID,
				GID:            o.GID,
				AdditionalGids: slices.Clone(o.AdditionalGIDs),
			},
			Capabilities: &specs.LinuxCapabilities{
				Bounding:  capList,
				Effective: slices.Clone(capList),
				Permitted: slices.Clone(capList),
			},
			Rlimits:         slices.Clone(o.Rlimits),
			NoNewPrivileges: o.NoNewPrivileges,
		},
		Hostname:   o.Hostname,
		Domainname: o.Domainname,
		Mounts:     defaultMounts(o),
		Linux: &specs.Linux{
			Sysctl:      maps.Clone(o.Sysctls),
			CgroupsPath: o.CgroupsPath,
		},
	}
	if o.Terminal && (o.ConsoleWidth > 0 || o.ConsoleHeight > 0) {
		s.Process.ConsoleSize = &specs.Box{Width: o.ConsoleWidth, Height: o.ConsoleHeight}
	}
	if o.OOMScoreAdj != 0 {
		adj := o.OOMScoreAdj
		s.Process.OOMScoreAdj = &adj
	}
	if p := o.AppArmorProfile; p != "" && p != AppArmorUnconfined && !o.Privileged {
		s.Process.ApparmorProfile = p
	}
	if !o.Privileged {
		s.Linux.MaskedPaths = DefaultMaskedPaths()
		s.Linux.ReadonlyPaths = DefaultReadonlyPaths()
	}

	if s.Linux.Namespaces, err = namespaces(o); err != nil {
		return nil, nil, err
	}
	res, w, err := resources(o)
	if err != nil {
		return nil, nil, err
	}
	warnings = append(warnings, w...)
	s.Linux.Resources = res

	if !o.Privileged && o.SeccompProfile != SeccompUnconfined {
		switch {
		case !SeccompSupported() && o.SeccompProfile == "":
			warnings = append(warnings, "seccomp is not enabled in your kernel, running container without default profile")
		case !SeccompSupported():
			return nil, nil, fmt.Errorf("seccomp is not enabled in your kernel, cannot run a custom seccomp profile: %w", errdefs.ErrInvalidArgument)
		case o.SeccompProfile == "":
			if s.Linux.Seccomp, err = profiles.GetDefaultProfile(s); err != nil {
				return nil, nil, fmt.Errorf("default seccomp profile: %w", err)
			}
		default:
			if s.Linux.Seccomp, err = profiles.LoadProfile(o.SeccompProfile, s); err != nil {
				return nil, nil, fmt.Errorf("seccomp profile: %w: %w", err, errdefs.ErrInvalidArgument)
			}
		}
	}
	return s, warnings, nil
}

// SeccompSupported reports whether containers can get a seccomp filter:
// libcontainer's seccomp support is compiled in (build tag seccomp, cgo,
// libseccomp) and the kernel has seccomp.
func SeccompSupported() bool {
	if !lcseccomp.Enabled {
		return false
	}
	status, err := os.ReadFile("/proc/self/status")
	return err == nil && strings.Contains(string(status), "\nSeccomp:")
}

// defaultMounts returns dockerd's default mounts plus o's tmpfs and extra
// mounts; an extra mount replaces a default one at the same destination.
func defaultMounts(o SpecOptions) []specs.Mount {
	shm := o.ShmSize
	if shm <= 0 {
		shm = DefaultShmSize
	}
	sysOpts := []string{"nosuid", "noexec", "nodev", "ro"}
	cgroupOpts := []string{"ro", "nosuid", "noexec", "nodev"}
	if o.Privileged {
		sysOpts = []string{"nosuid", "noexec", "nodev"}
		cgroupOpts = []string{"rw", "nosuid", "noexec", "nodev"}
	}
	mounts := []specs.Mount{
		{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
		{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
		{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: sysOpts},
		{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: cgroupOpts},
		{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=" + strconv.FormatInt(shm, 10)}},
	}
	if o.IPC == NamespaceHost {
		// The host's IPC namespace comes with the host's /dev/shm.
		mounts[len(mounts)-1] = specs.Mount{Destination: "/dev/shm", Type: "bind", Source: "/dev/shm", Options: []string{"rbind", "nosuid", "noexec", "nodev"}}
	}
	var extra []specs.Mount
	for _, dst := range slices.Sorted(maps.Keys(o.Tmpfs)) {
		opts := []string{"noexec", "nosuid", "nodev"}
		for opt := range strings.SplitSeq(o.Tmpfs[dst], ",") {
			if opt = strings.TrimSpace(opt); opt != "" {
				opts = append(opts, opt)
			}
		}
		extra = append(extra, specs.Mount{Destination: dst, Type: "tmpfs", Source: "tmpfs", Options: opts})
	}
	extra = append(extra, o.Mounts...)
	taken := make(map[string]bool, len(extra))
	for _, m := range extra {
		taken[filepath.Clean(m.Destination)] = true
	}
	out := make([]specs.Mount, 0, len(mounts)+len(extra))
	for _, m := range mounts {
		if !taken[m.Destination] {
			out = append(out, m)
		}
	}
	return append(out, extra...)
}

// namespaces returns the container's namespaces: mount and UTS always,
// network, IPC and PID new or joined, cgroup per CgroupNamespace.
func namespaces(o SpecOptions) ([]specs.LinuxNamespace, error) {
	ns := []specs.LinuxNamespace{{Type: specs.MountNamespace}}
	for _, n := range []struct {
		typ  specs.LinuxNamespaceType
		mode string
	}{
		{specs.NetworkNamespace, o.Network},
		{specs.UTSNamespace, ""},
		{specs.PIDNamespace, o.PID},
		{specs.IPCNamespace, o.IPC},
	} {
		switch {
		case n.mode == "" || n.mode == NamespacePrivate:
			ns = append(ns, specs.LinuxNamespace{Type: n.typ})
		case n.mode == NamespaceHost:
		case filepath.IsAbs(n.mode):
			ns = append(ns, specs.LinuxNamespace{Type: n.typ, Path: n.mode})
		default:
			return nil, fmt.Errorf("invalid %s namespace mode %q: %w", n.typ, n.mode, errdefs.ErrInvalidArgument)
		}
	}
	switch o.CgroupNamespace {
	case "":
		if cgroups.IsCgroup2UnifiedMode() {
			ns = append(ns, specs.LinuxNamespace{Type: specs.CgroupNamespace})
		}
	case NamespacePrivate:
		ns = append(ns, specs.LinuxNamespace{Type: specs.CgroupNamespace})
	case NamespaceHost:
	default:
		return nil, fmt.Errorf("invalid cgroup namespace mode %q: %w", o.CgroupNamespace, errdefs.ErrInvalidArgument)
	}
	return ns, nil
}

// resources returns the cgroup resources of o: dockerd's device rules
// and the memory, CPU, pids and block I/O limits.
func resources(o SpecOptions) (*specs.LinuxResources, []string, error) {
	var warnings []string
	r := &specs.LinuxResources{Devices: defaultDeviceRules(o.Privileged)}
	if o.Memory < 0 || o.MemoryReservation < 0 || o.NanoCPUs < 0 || o.CPUQuota < 0 && o.CPUQuota != -1 {
		return nil, nil, fmt.Errorf("negative resource limit: %w", errdefs.ErrInvalidArgument)
	}
	if o.Memory > 0 && o.Memory < 6<<20 {
		// dockerd's linuxMinMemory and wording.
		return nil, nil, fmt.Errorf("Minimum memory limit allowed is 6MB: %w", errdefs.ErrInvalidArgument)
	}
	if o.Memory > 0 || o.MemoryReservation > 0 || o.MemorySwap != 0 || o.OOMKillDisable {
		m := &specs.LinuxMemory{}
		if o.Memory > 0 {
			m.Limit = ptr(o.Memory)
			swap := o.MemorySwap
			if swap == 0 {
				swap = 2 * o.Memory
			}
			switch {
			case !swapLimitSupported():
				warnings = append(warnings, "Your kernel does not support swap limit capabilities or the cgroup is not mounted. Memory limited without swap.")
			case swap > 0 && swap < o.Memory:
				return nil, nil, fmt.Errorf("Minimum memoryswap limit should be larger than memory limit, see usage: %w", errdefs.ErrInvalidArgument)
			default:
				m.Swap = ptr(swap)
			}
		} else if o.MemorySwap > 0 {
			return nil, nil, fmt.Errorf("You should always set the Memory limit when using Memoryswap limit, see usage: %w", errdefs.ErrInvalidArgument)
		}
		if o.MemoryReservation > 0 {
			m.Reservation = ptr(o.MemoryReservation)
		}
		if o.OOMKillDisable {
			m.DisableOOMKiller = ptr(true)
		}
		r.Memory = m
	}
	if o.NanoCPUs > 0 && (o.CPUQuota > 0 || o.CPUPeriod > 0) {
		return nil, nil, fmt.Errorf("Conflicting options: Nano CPUs and CPU Period cannot both be set: %w", errdefs.ErrInvalidArgument)
	}
	if o.NanoCPUs > 0 || o.CPUShares > 0 || o.CPUQuota != 0 || o.CPUPeriod > 0 || o.CpusetCpus != "" || o.CpusetMems != "" {
		c := &specs.LinuxCPU{Cpus: o.CpusetCpus, Mems: o.CpusetMems}
		if o.NanoCPUs > 0 {
			c.Period = ptr(DefaultCPUPeriod)
			c.Quota = ptr(o.NanoCPUs * int64(DefaultCPUPeriod) / 1e9)
		}
		if o.CPUQuota != 0 {
			c.Quota = ptr(o.CPUQuota)
		}
		if o.CPUPeriod > 0 {
			c.Period = ptr(o.CPUPeriod)
		}
		if o.CPUShares > 0 {
			c.Shares = ptr(o.CPUShares)
		}
		r.CPU = c
	}
	if o.PidsLimit != 0 {
		limit := o.PidsLimit
		if limit < 0 {
			limit = -1
		}
		r.Pids = &specs.LinuxPids{Limit: ptr(limit)}
	}
	if o.BlkioWeight != 0 {
		if o.BlkioWeight < 10 || o.BlkioWeight > 1000 {
			return nil, nil, fmt.Errorf("Range of blkio weight is from 10 to 1000: %w", errdefs.ErrInvalidArgument)
		}
		r.BlockIO = &specs.LinuxBlockIO{Weight: ptr(o.BlkioWeight)}
	}
	return r, warnings, nil
}

// defaultDeviceRules returns dockerd's device cgroup rules: deny all,
// then allow /dev/null, zero, full, random, urandom, tty, console and ptmx
// and deny /dev/rtc0... (10:229, fuse); a privileged container may use
// every device.
func defaultDeviceRules(privileged bool) []specs.LinuxDeviceCgroup {
	if privileged {
		return []specs.LinuxDeviceCgroup{{Allow: true, Access: "rwm"}}
	}
	rule := func(allow bool, major, minor int64) specs.LinuxDeviceCgroup {
		return specs.LinuxDeviceCgroup{Allow: allow, Type: "c", Major: ptr(major), Minor: ptr(minor), Access: "rwm"}
	}
	return []specs.LinuxDeviceCgroup{
		{Allow: false, Access: "rwm"},
		rule(true, 1, 5), // /dev/zero
		rule(true, 1, 3), // /dev/null
		rule(true, 1, 9), // /dev/urandom
		rule(true, 1, 8), // /dev/random
		rule(true, 5, 0), // /dev/tty
		rule(true, 5, 1), // /dev/console
		rule(false, 10, 229),
	}
}

// swapLimitSupported reports whether the host accounts swap, so that a
// memory+swap limit can be set (dockerd's sysinfo.SwapLimit).
func swapLimitSupported() bool {
	if cgroups.IsCgroup2UnifiedMode() {
		own, err := os.ReadFile("/proc/self/cgroup")
		if err != nil {
			return false
		}
		rel := strings.TrimPrefix(strings.TrimSpace(string(own)), "0::")
		_, err = os.Stat(filepath.Join("/sys/fs/cgroup", rel, "memory.swap.max"))
		return err == nil
	}
	mnt, err := cgroups.FindCgroupMountpoint("", "memory")
	if err != nil {
		return false
	}
	_, err = os.Stat(filepath.Join(mnt, "memory.memsw.limit_in_bytes"))
	return err == nil
}

// tweakCapabilities applies CapAdd and CapDrop to the default set as
// dockerd's caps.TweakCapabilities: ALL in CapAdd starts from every
// capability, ALL in CapDrop from none; a privileged container gets all.
func tweakCapabilities(add, drop []string, privileged bool) ([]string, error) {
	if privileged {
		return allCapabilities(), nil
	}
	adds, err := normalizeCapabilities(add)
	if err != nil {
		return nil, err
	}
	drops, err := normalizeCapabilities(drop)
	if err != nil {
		return nil, err
	}
	var base []string
	switch {
	case slices.Contains(adds, "ALL"):
		base, adds = allCapabilities(), nil
	case slices.Contains(drops, "ALL"):
		base = nil
	default:
		base = DefaultCapabilities()
	}
	var out []string
	for _, c := range base {
		if !slices.Contains(drops, c) {
			out = append(out, c)
		}
	}
	for _, c := range adds {
		if !slices.Contains(out, c) {
			out = append(out, c)
		}
	}
	if out == nil {
		out = []string{}
	}
	return out, nil
}

// normalizeCapabilities upper-cases names and adds CAP_, refusing names
// the kernel does not know, with dockerd's wording.
func normalizeCapabilities(names []string) ([]string, error) {
	known := allCapabilities()
	out := make([]string, 0, len(names))
	for _, n := range names {
		n = strings.ToUpper(strings.TrimSpace(n))
		if n == "ALL" {
			out = append(out, n)
			continue
		}
		if !strings.HasPrefix(n, "CAP_") {
			n = "CAP_" + n
		}
		if !slices.Contains(known, n) {
			return nil, fmt.Errorf("unknown capability: %q: %w", n, errdefs.ErrInvalidArgument)
		}
		out = append(out, n)
	}
	return out, nil
}

// allCapabilities lists the capabilities this kernel supports, CAP_
// names.
func allCapabilities() []string {
	list, err := capability.ListSupported()
	if err != nil {
		list = capability.ListKnown()
	}
	out := make([]string, 0, len(list))
	for _, c := range list {
		out = append(out, "CAP_"+strings.ToUpper(c.String()))
	}
	return out
}

func ptr[T any](v T) *T { return &v }

// errNoSpec is returned by Create for a spec without root or process.
var errNoSpec = errors.New("spec needs root and process")
