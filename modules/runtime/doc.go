// Package runtime is seed step 2.4, the container runtime: it drives
// containers in-process through libcontainer (runc v1.5), with no
// containerd and no shim, and their cgroups through
// github.com/opencontainers/cgroups (cgroupfs, or systemd when
// configured; cgroup v1 and v2).
//
// A Runtime keeps libcontainer's state under <exec-root>/runtime. Create
// makes a Container from an OCI runtime spec (DefaultSpec builds one with
// dockerd's defaults); Start runs its init with Stdio copied through
// pipes or a pseudo-terminal; Wait gives the exit status and whether the
// OOM killer struck; Exec, Signal, Pause, Resume, Update, Stats and
// Processes act on a running container; Destroy removes it. The daemon
// module builds the container store and lifecycle on top.
//
// The container init is the daemon's binary re-executed as
// "<binary> init": main calls Init when IsInit(os.Args), before
// anything else.
package runtime
