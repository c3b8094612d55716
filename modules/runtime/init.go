package runtime

import (
	goruntime "runtime"

	"github.com/opencontainers/runc/libcontainer"

	// The device cgroup controller: without it libcontainer's cgroup
	// managers cannot apply device rules and refuse a spec that has them.
	_ "github.com/opencontainers/cgroups/devices"
	// nsexec, the C half of the container init: a cgo constructor that
	// joins or creates the container's namespaces before the Go runtime
	// starts. It does nothing unless libcontainer's environment
	// (_LIBCONTAINER_INITPIPE) is set, so every start of the binary pays
	// only a getenv.
	_ "github.com/opencontainers/runc/libcontainer/nsenter"
)

// InitArg is the first argument libcontainer re-executes the daemon's
// binary with to make it a container's init ("<binary> init", as runc).
const InitArg = "init"

// IsInit reports whether args (os.Args) are those of a container init:
// the binary must then call Init before anything else, flag parsing
// included.
func IsInit(args []string) bool { return len(args) > 1 && args[1] == InitArg }

// Init runs the Go half of a container's init (libcontainer.Init): it
// reads its configuration from the runtime over the inherited pipes,
// finishes the container's setup and execs the container's process. It
// never returns; on failure it reports to the runtime and exits 255.
func Init() { libcontainer.Init() }

// LockMainThread wires the calling goroutine to its OS thread for good.
// main must call it from an init function (which runs on the process's
// main thread): libcontainer starts every container's init with a
// goroutine that joins the container's mount namespace (setns) and exits
// locked to its thread so that Go discards the thread. Go cannot discard
// the main thread and parks it instead, still in that container's mount
// namespace, and /proc/self (the main thread's view: mountinfo, fd
// paths) would then describe the container, pinning its mounts. With the
// main goroutine holding the main thread, no other goroutine ever runs
// there.
func LockMainThread() { goruntime.LockOSThread() }
