package daemon

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/opencontainers/runtime-spec/specs-go"

	"github.com/wharfd/wharfd/modules/runtime"
)

// --init, as dockerd: the daemon's init binary (tini) is bind-mounted
// read-only at InContainerInitPath and runs as the container's PID 1 with
// "--" and the container's command, so that signals reach the command and
// zombies are reaped.
const (
	// InContainerInitPath is where an --init container sees its init.
	InContainerInitPath = "/sbin/docker-init"
	// DefaultInitBinary is dockerd's name of the init binary.
	DefaultInitBinary = "docker-init"
)

// initFallbacks are the names tried after docker-init when no init-path
// is configured: Debian's tini package installs a static tini-static
// (which runs in any image) and a dynamic tini.
func initFallbacks() []string { return []string{"tini-static", "tini"} }

// initLibexecDirs are the directories dockerd searches for its binaries
// before PATH (FHS 3.0 libexec, then FHS 2.2 lib).
func initLibexecDirs() []string {
	return []string{"/usr/local/libexec/docker", "/usr/libexec/docker", "/usr/local/lib/docker", "/usr/lib/docker"}
}

// InitNotFoundError is the start error of an --init container when the
// daemon has no init binary (a 500, as dockerd's). Its text avoids the
// words "no such file or directory" and "permission denied", which the
// docker CLI would take for a missing command (exit 127 or 126).
type InitNotFoundError struct {
	// Configured is the init-path option ("" when unset).
	Configured string
	// Err is the lookup's error for a configured absolute path.
	Err error
}

func (e InitNotFoundError) Error() string {
	if e.Configured != "" && filepath.IsAbs(e.Configured) {
		what := "is not an executable file"
		if errors.Is(e.Err, fs.ErrNotExist) {
			what = "does not exist"
		}
		return fmt.Sprintf("cannot run --init container: init-path %q %s", e.Configured, what)
	}
	names := []string{DefaultInitBinary}
	if e.Configured != "" {
		names = []string{e.Configured}
	} else {
		names = append(names, initFallbacks()...)
	}
	return fmt.Sprintf("cannot run --init container: init binary %s not found in %s or PATH (install tini or set init-path)",
		strings.Join(names, ", "), strings.Join(initLibexecDirs(), ", "))
}

// LookupInit returns the absolute path of the init binary, as dockerd's
// LookupInitPath: configured (the init-path option) when it is an
// absolute path; else that name, or docker-init, searched in dockerd's
// libexec directories and then PATH; with no init-path, Debian's
// tini-static and then tini follow. A missing binary is an
// InitNotFoundError.
func LookupInit(configured string) (string, error) {
	if filepath.IsAbs(configured) {
		p, err := exec.LookPath(configured)
		if err != nil {
			var ee *exec.Error
			if errors.As(err, &ee) {
				err = ee.Err
			}
			return "", InitNotFoundError{Configured: configured, Err: err}
		}
		return p, nil
	}
	names := []string{configured}
	if configured == "" {
		names = append([]string{DefaultInitBinary}, initFallbacks()...)
	}
	for _, name := range names {
		for _, dir := range initLibexecDirs() {
			if p, err := exec.LookPath(filepath.Join(dir, name)); err == nil {
				return p, nil
			}
		}
		if p, err := exec.LookPath(name); err == nil {
			if abs, err := filepath.Abs(p); err == nil {
				return abs, nil
			}
			return p, nil
		}
	}
	return "", InitNotFoundError{Configured: configured}
}

// initPath is the configured init-path, "" when unset.
func (d *Daemon) initPath() string {
	if d.o.Config == nil {
		return ""
	}
	return d.o.Config.InitPath
}

// withInit makes the init PID 1 of a container started with --init
// (HostConfig.Init): the command becomes `docker-init -- <command>` and
// the binary is bind-mounted read-only at InContainerInitPath. Without
// --init it changes nothing; without an init binary it returns an
// InitNotFoundError.
func (d *Daemon) withInit(o *runtime.SpecOptions, h *container.HostConfig) error {
	if h.Init == nil || !*h.Init {
		return nil
	}
	path, err := LookupInit(d.initPath())
	if err != nil {
		return err
	}
	o.Args = append([]string{InContainerInitPath, "--"}, o.Args...)
	o.Mounts = append(o.Mounts, specs.Mount{
		Destination: InContainerInitPath, Type: "bind", Source: path,
		Options: []string{"bind", "ro"},
	})
	return nil
}

// InitBinary reports the init of --init containers for GET /info, as
// dockerd's InitBinary and InitCommit: the configured init-path, else the
// name of the binary found ("docker-init", "tini-static", …; docker-init
// when there is none), and the commit its --version prints ("tini version
// 0.19.0 - git.de40ad0" gives de40ad0). Debian's tini prints no commit:
// its version ("0.19.0") stands in. commit is "" when there is no binary
// or it does not answer within 2 seconds.
func (d *Daemon) InitBinary() (binary, commit string) {
	binary = d.initPath()
	path, err := LookupInit(binary)
	if binary == "" {
		binary = DefaultInitBinary
		if err == nil {
			binary = filepath.Base(path)
		}
	}
	if err != nil {
		return binary, ""
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, path, "--version").Output()
	if err != nil {
		return binary, ""
	}
	version, commit := parseInitVersion(string(out))
	if commit == "" {
		commit = version
	}
	return binary, commit
}

// parseInitVersion parses tini's --version output, "tini version 0.19.0"
// optionally followed by " - git.<commit>", as dockerd's
// parseInitVersion.
func parseInitVersion(out string) (version, commit string) {
	first, rest, hasRest := strings.Cut(strings.TrimSpace(out), " - ")
	if hasRest {
		if c, ok := strings.CutPrefix(strings.TrimSpace(rest), "git."); ok && !strings.Contains(c, ".") {
			commit = c
		}
	}
	version, _ = strings.CutPrefix(strings.TrimSpace(first), "tini version ")
	if version == strings.TrimSpace(first) {
		version = ""
	}
	return version, commit
}
