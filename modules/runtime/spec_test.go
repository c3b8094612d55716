package runtime

import (
	"slices"
	"strings"
	"testing"

	"github.com/containerd/errdefs"
	"github.com/opencontainers/runtime-spec/specs-go"
)

func TestDefaultSpec(t *testing.T) {
	s, _, err := DefaultSpec(SpecOptions{Rootfs: "/rootfs", Args: []string{"sh"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Process.Capabilities.Bounding; !slices.Equal(got, DefaultCapabilities()) || len(got) != 14 {
		t.Errorf("capabilities: %v", got)
	}
	if s.Process.Cwd != "/" || s.Process.Env[0] != "PATH="+DefaultPathEnv || s.Process.NoNewPrivileges || s.Process.ApparmorProfile != "" {
		t.Errorf("process: %+v", s.Process)
	}
	var dests []string
	for _, m := range s.Mounts {
		dests = append(dests, m.Destination)
		if m.Destination == "/dev/shm" && !slices.Contains(m.Options, "size=67108864") {
			t.Errorf("/dev/shm: %v, want 64 MiB", m.Options)
		}
		if m.Destination == "/sys" && !slices.Contains(m.Options, "ro") {
			t.Errorf("/sys: %v, want ro", m.Options)
		}
	}
	if want := []string{"/proc", "/dev", "/dev/pts", "/sys", "/sys/fs/cgroup", "/dev/mqueue", "/dev/shm"}; !slices.Equal(dests, want) {
		t.Errorf("mounts: got %v, want %v", dests, want)
	}
	for _, p := range []string{"/proc/kcore", "/proc/keys", "/sys/firmware", "/proc/interrupts"} {
		if !slices.Contains(s.Linux.MaskedPaths, p) {
			t.Errorf("%s not masked", p)
		}
	}
	if !slices.Equal(s.Linux.ReadonlyPaths, DefaultReadonlyPaths()) {
		t.Errorf("read-only paths: %v", s.Linux.ReadonlyPaths)
	}
	var ns []specs.LinuxNamespaceType
	for _, n := range s.Linux.Namespaces {
		ns = append(ns, n.Type)
	}
	for _, want := range []specs.LinuxNamespaceType{specs.MountNamespace, specs.NetworkNamespace, specs.UTSNamespace, specs.PIDNamespace, specs.IPCNamespace} {
		if !slices.Contains(ns, want) {
			t.Errorf("namespace %s missing from %v", want, ns)
		}
	}
	if (s.Linux.Seccomp != nil) != SeccompSupported() {
		t.Errorf("seccomp profile %v with support %v", s.Linux.Seccomp != nil, SeccompSupported())
	}
	if d := s.Linux.Resources.Devices; len(d) != 8 || d[0].Allow || d[0].Access != "rwm" {
		t.Errorf("device rules: %+v", d)
	}
}

func TestDefaultSpecOptions(t *testing.T) {
	tests := []struct {
		name  string
		give  SpecOptions
		check func(t *testing.T, s *specs.Spec)
	}{
		{
			name: "cap add and drop",
			give: SpecOptions{CapAdd: []string{"net_admin", "CAP_SYS_PTRACE"}, CapDrop: []string{"mknod", "CAP_NET_RAW"}},
			check: func(t *testing.T, s *specs.Spec) {
				c := s.Process.Capabilities.Effective
				if !slices.Contains(c, "CAP_NET_ADMIN") || !slices.Contains(c, "CAP_SYS_PTRACE") || slices.Contains(c, "CAP_MKNOD") || slices.Contains(c, "CAP_NET_RAW") || len(c) != 14 {
					t.Errorf("capabilities: %v", c)
				}
			},
		},
		{
			name: "drop all",
			give: SpecOptions{CapDrop: []string{"ALL"}, CapAdd: []string{"chown"}},
			check: func(t *testing.T, s *specs.Spec) {
				if c := s.Process.Capabilities.Bounding; !slices.Equal(c, []string{"CAP_CHOWN"}) {
					t.Errorf("capabilities: %v", c)
				}
			},
		},
		{
			name: "privileged",
			give: SpecOptions{Privileged: true, AppArmorProfile: "docker-default"},
			check: func(t *testing.T, s *specs.Spec) {
				if len(s.Process.Capabilities.Bounding) <= 14 || s.Linux.Seccomp != nil || s.Linux.MaskedPaths != nil || s.Process.ApparmorProfile != "" {
					t.Errorf("privileged: caps %d, seccomp %v, masked %v, apparmor %q", len(s.Process.Capabilities.Bounding), s.Linux.Seccomp != nil, s.Linux.MaskedPaths, s.Process.ApparmorProfile)
				}
			},
		},
		{
			name: "security options",
			give: SpecOptions{NoNewPrivileges: true, AppArmorProfile: "docker-default", SeccompProfile: SeccompUnconfined},
			check: func(t *testing.T, s *specs.Spec) {
				if !s.Process.NoNewPrivileges || s.Process.ApparmorProfile != "docker-default" || s.Linux.Seccomp != nil {
					t.Errorf("process %+v, seccomp %v", s.Process, s.Linux.Seccomp != nil)
				}
			},
		},
		{
			name: "limits",
			give: SpecOptions{Memory: 64 << 20, NanoCPUs: 1_500_000_000, PidsLimit: -1, CPUShares: 512, ShmSize: 1 << 20},
			check: func(t *testing.T, s *specs.Spec) {
				r := s.Linux.Resources
				if *r.Memory.Limit != 64<<20 || (r.Memory.Swap != nil && *r.Memory.Swap != 128<<20) {
					t.Errorf("memory: %+v", r.Memory)
				}
				if *r.CPU.Quota != 150000 || *r.CPU.Period != 100000 || *r.CPU.Shares != 512 {
					t.Errorf("cpu: quota %d period %d shares %d", *r.CPU.Quota, *r.CPU.Period, *r.CPU.Shares)
				}
				if *r.Pids.Limit != -1 {
					t.Errorf("pids: %d", *r.Pids.Limit)
				}
				for _, m := range s.Mounts {
					if m.Destination == "/dev/shm" && !slices.Contains(m.Options, "size=1048576") {
						t.Errorf("/dev/shm: %v", m.Options)
					}
				}
			},
		},
		{
			name: "tmpfs and mounts replace defaults",
			give: SpecOptions{
				Tmpfs:  map[string]string{"/run": "size=1m,exec"},
				Mounts: []specs.Mount{{Destination: "/dev/shm", Type: "bind", Source: "/host/shm", Options: []string{"rbind"}}},
			},
			check: func(t *testing.T, s *specs.Spec) {
				var shm, run []specs.Mount
				for _, m := range s.Mounts {
					switch m.Destination {
					case "/dev/shm":
						shm = append(shm, m)
					case "/run":
						run = append(run, m)
					}
				}
				if len(shm) != 1 || shm[0].Source != "/host/shm" {
					t.Errorf("/dev/shm: %+v", shm)
				}
				if len(run) != 1 || strings.Join(run[0].Options, ",") != "noexec,nosuid,nodev,size=1m,exec" {
					t.Errorf("/run: %+v", run)
				}
			},
		},
		{
			name: "host namespaces",
			give: SpecOptions{Network: NamespaceHost, PID: NamespaceHost, IPC: "/proc/1/ns/ipc", CgroupNamespace: NamespacePrivate},
			check: func(t *testing.T, s *specs.Spec) {
				got := map[specs.LinuxNamespaceType]string{}
				for _, n := range s.Linux.Namespaces {
					got[n.Type] = n.Path
				}
				_, net := got[specs.NetworkNamespace]
				_, pid := got[specs.PIDNamespace]
				_, cg := got[specs.CgroupNamespace]
				if net || pid || !cg || got[specs.IPCNamespace] != "/proc/1/ns/ipc" {
					t.Errorf("namespaces: %v", got)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.give.Rootfs, tt.give.Args = "/rootfs", []string{"sh"}
			s, _, err := DefaultSpec(tt.give)
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, s)
		})
	}
}

func TestDefaultSpecErrors(t *testing.T) {
	tests := []struct {
		name    string
		give    SpecOptions
		wantErr string
	}{
		{name: "relative rootfs", give: SpecOptions{Rootfs: "rootfs", Args: []string{"sh"}}, wantErr: "absolute"},
		{name: "no command", give: SpecOptions{Rootfs: "/r"}, wantErr: "no command specified"},
		{name: "relative cwd", give: SpecOptions{Rootfs: "/r", Args: []string{"sh"}, Cwd: "tmp"}, wantErr: "the working directory 'tmp' is invalid, it needs to be an absolute path"},
		{name: "unknown capability", give: SpecOptions{Rootfs: "/r", Args: []string{"sh"}, CapAdd: []string{"bogus"}}, wantErr: `unknown capability: "CAP_BOGUS"`},
		{name: "tiny memory", give: SpecOptions{Rootfs: "/r", Args: []string{"sh"}, Memory: 1 << 20}, wantErr: "Minimum memory limit allowed is 6MB"},
		{name: "swap without memory", give: SpecOptions{Rootfs: "/r", Args: []string{"sh"}, MemorySwap: 1 << 30}, wantErr: "You should always set the Memory limit when using Memoryswap limit"},
		{name: "cpus and period", give: SpecOptions{Rootfs: "/r", Args: []string{"sh"}, NanoCPUs: 1e9, CPUPeriod: 50000}, wantErr: "Nano CPUs and CPU Period cannot both be set"},
		{name: "bad namespace", give: SpecOptions{Rootfs: "/r", Args: []string{"sh"}, Network: "bridge"}, wantErr: `invalid network namespace mode "bridge"`},
		{name: "blkio weight", give: SpecOptions{Rootfs: "/r", Args: []string{"sh"}, BlkioWeight: 5}, wantErr: "Range of blkio weight is from 10 to 1000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := DefaultSpec(tt.give)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errdefs.IsInvalidArgument(err) {
				t.Fatalf("got %v, want an invalid-argument error containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestIsInit(t *testing.T) {
	tests := []struct {
		name string
		give []string
		want bool
	}{
		{name: "init", give: []string{"/usr/bin/wharfd", "init"}, want: true},
		{name: "daemon", give: []string{"/usr/bin/wharfd", "--debug"}},
		{name: "no args", give: []string{"wharfd"}},
		{name: "init later", give: []string{"wharfd", "--data-root", "init"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := IsInit(tt.give); got != tt.want {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
		})
	}
}
