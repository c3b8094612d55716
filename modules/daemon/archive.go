package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/containerd/errdefs"
	securejoin "github.com/cyphar/filepath-securejoin"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"go.podman.io/storage/pkg/archive"
	"go.podman.io/storage/pkg/idtools"
	"golang.org/x/sys/unix"

	"github.com/wharfd/wharfd/modules/runtime"
)

// Top is GET /containers/{id}/top: ps (with psArgs, default -ef) filtered
// to the container's processes, as dockerd's.
func (d *Daemon) Top(ctx context.Context, ref, psArgs string) (container.TopResponse, error) {
	c, err := d.get(ref)
	if err != nil {
		return container.TopResponse{}, err
	}
	c.mu.Lock()
	rc := c.rc
	restarting := c.rec.State.Restarting
	c.mu.Unlock()
	if restarting {
		return container.TopResponse{}, errdefs.ErrConflict.WithMessage(fmt.Sprintf("Container %s is restarting, wait until the container is running", c.ID()))
	}
	if rc == nil {
		return container.TopResponse{}, errNotRunning(c.ID())
	}
	if psArgs == "" {
		psArgs = "-ef"
	}
	pids, err := rc.Processes()
	if err != nil {
		return container.TopResponse{}, err
	}
	out, err := exec.CommandContext(ctx, "ps", strings.Fields(psArgs)...).Output()
	if err != nil {
		return container.TopResponse{}, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("ps: %v", err))
	}
	return parsePS(out, pids)
}

// parsePS keeps the lines of ps's output whose PID column is one of pids,
// as dockerd's parsePSOutput: the last column takes the rest of the line.
func parsePS(out []byte, pids []int) (container.TopResponse, error) {
	lines := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
	resp := container.TopResponse{Titles: strings.Fields(lines[0]), Processes: [][]string{}}
	col := slices.Index(resp.Titles, "PID")
	if col < 0 {
		return resp, errdefs.ErrInvalidArgument.WithMessage("Couldn't find PID field in ps output")
	}
	for _, line := range lines[1:] {
		if line == "" {
			continue
		}
		fields := strings.Fields(line)
		if len(fields) <= col {
			continue
		}
		pid, err := strconv.Atoi(fields[col])
		if err != nil || !slices.Contains(pids, pid) {
			continue
		}
		n := len(resp.Titles)
		if len(fields) > n {
			fields = append(fields[:n-1], strings.Join(fields[n-1:], " "))
		}
		resp.Processes = append(resp.Processes, fields)
	}
	return resp, nil
}

// Stats is GET /containers/{id}/stats: samples from the container's
// cgroups, one a second while stream, else one (with the previous
// second's CPU figures unless oneShot). A stopped container yields one
// empty sample.
func (d *Daemon) Stats(ctx context.Context, ref string, stream, oneShot bool, emit func(*container.StatsResponse) error) error {
	c, err := d.get(ref)
	if err != nil {
		return err
	}
	var prev *container.StatsResponse
	first := true
	for {
		c.mu.Lock()
		rc := c.rc
		name := c.rec.Name
		c.mu.Unlock()
		s := &container.StatsResponse{ID: c.ID(), Name: name, OSType: "linux"}
		var st *runtime.Stats
		if rc != nil {
			st, _ = rc.Stats()
		}
		if st != nil {
			fillStats(s, st)
		}
		if prev != nil {
			s.PreRead, s.PreCPUStats = prev.Read, prev.CPUStats
		}
		if !stream && first && !oneShot && st != nil {
			// The CLI computes CPU % from two samples.
			prev, first = s, false
			if !sleepCtx(ctx, time.Second) {
				return nil
			}
			continue
		}
		if err := emit(s); err != nil {
			return err
		}
		if !stream || rc == nil {
			return nil
		}
		prev = s
		if !sleepCtx(ctx, time.Second) {
			return nil
		}
	}
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

func fillStats(s *container.StatsResponse, st *runtime.Stats) {
	s.Read = st.Read
	s.CPUStats = container.CPUStats{
		CPUUsage: container.CPUUsage{
			TotalUsage: st.CPU.TotalUsage, PercpuUsage: st.CPU.PercpuUsage,
			UsageInKernelmode: st.CPU.UsageInKernelmode, UsageInUsermode: st.CPU.UsageInUsermode,
		},
		SystemUsage: st.CPU.SystemUsage, OnlineCPUs: st.CPU.OnlineCPUs,
		ThrottlingData: container.ThrottlingData{Periods: st.CPU.ThrottlingPeriods, ThrottledPeriods: st.CPU.ThrottledPeriods, ThrottledTime: st.CPU.ThrottledTime},
	}
	s.MemoryStats = container.MemoryStats{Usage: st.Memory.Usage, MaxUsage: st.Memory.MaxUsage, Stats: st.Memory.Stats, Failcnt: st.Memory.Failcnt, Limit: st.Memory.Limit}
	// No limit: the host's memory, as dockerd reports it.
	var si unix.Sysinfo_t
	if unix.Sysinfo(&si) == nil {
		if total := si.Totalram * uint64(si.Unit); total > 0 && (s.MemoryStats.Limit == 0 || s.MemoryStats.Limit > total) {
			s.MemoryStats.Limit = total
		}
	}
	s.PidsStats = container.PidsStats{Current: st.Pids.Current, Limit: st.Pids.Limit}
	conv := func(in []runtime.BlkioEntry) []container.BlkioStatEntry {
		out := make([]container.BlkioStatEntry, 0, len(in))
		for _, e := range in {
			out = append(out, container.BlkioStatEntry{Major: e.Major, Minor: e.Minor, Op: e.Op, Value: e.Value})
		}
		return out
	}
	b := st.Blkio
	s.BlkioStats = container.BlkioStats{
		IoServiceBytesRecursive: conv(b.IoServiceBytesRecursive), IoServicedRecursive: conv(b.IoServicedRecursive),
		IoQueuedRecursive: conv(b.IoQueuedRecursive), IoServiceTimeRecursive: conv(b.IoServiceTimeRecursive),
		IoWaitTimeRecursive: conv(b.IoWaitTimeRecursive), IoMergedRecursive: conv(b.IoMergedRecursive),
		IoTimeRecursive: conv(b.IoTimeRecursive), SectorsRecursive: conv(b.SectorsRecursive),
	}
}

// mountRootfs mounts the container's layer (again, when it runs) and
// returns the path and the function that unmounts it.
func (d *Daemon) mountRootfs(c *Container) (string, func(), error) {
	cs := d.o.Store.Containers()
	p, err := cs.Mount(c.ID(), "")
	if err != nil {
		return "", nil, fmt.Errorf("mount container layer: %w", err)
	}
	var once sync.Once
	return p, func() { once.Do(func() { _, _ = cs.Unmount(c.ID(), false) }) }, nil
}

// errNoSuchPath is dockerd's 404 for a missing path in a container.
func errNoSuchPath(path, ref string) error {
	return errdefs.ErrNotFound.WithMessage(fmt.Sprintf("Could not find the file %s in container %s", path, ref))
}

// resolvePath resolves path in rootfs without following its last
// component (securejoin on the parent), as docker cp sees paths.
func resolvePath(rootfs, path string) (string, error) {
	clean := filepath.Clean("/" + path)
	if clean == "/" {
		return rootfs, nil
	}
	dir, err := securejoin.SecureJoin(rootfs, filepath.Dir(clean))
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, filepath.Base(clean)), nil
}

// statPath returns the PathStat of a resolved path.
func statPath(full, name string) (container.PathStat, error) {
	fi, err := os.Lstat(full)
	if err != nil {
		return container.PathStat{}, err
	}
	st := container.PathStat{Name: name, Size: fi.Size(), Mode: fi.Mode(), Mtime: fi.ModTime()}
	if fi.Mode()&os.ModeSymlink != 0 {
		st.LinkTarget, _ = os.Readlink(full)
	}
	return st, nil
}

// StatPath is HEAD /containers/{id}/archive: the path's stat.
func (d *Daemon) StatPath(ctx context.Context, ref, path string) (container.PathStat, error) {
	c, err := d.get(ref)
	if err != nil {
		return container.PathStat{}, err
	}
	rootfs, unmount, err := d.mountRootfs(c)
	if err != nil {
		return container.PathStat{}, err
	}
	defer unmount()
	full, err := resolvePath(rootfs, path)
	if err != nil {
		return container.PathStat{}, err
	}
	st, err := statPath(full, filepath.Base(filepath.Clean("/"+path)))
	if errors.Is(err, os.ErrNotExist) {
		return st, errNoSuchPath(path, ref)
	}
	return st, err
}

// ArchivePath is GET /containers/{id}/archive: a tar of path (a file or a
// directory, named by its base name) and its stat. The reader must be
// closed.
func (d *Daemon) ArchivePath(ctx context.Context, ref, path string) (io.ReadCloser, container.PathStat, error) {
	c, err := d.get(ref)
	if err != nil {
		return nil, container.PathStat{}, err
	}
	rootfs, unmount, err := d.mountRootfs(c)
	if err != nil {
		return nil, container.PathStat{}, err
	}
	full, err := resolvePath(rootfs, path)
	if err != nil {
		unmount()
		return nil, container.PathStat{}, err
	}
	base := filepath.Base(filepath.Clean("/" + path))
	st, err := statPath(full, base)
	if err != nil {
		unmount()
		if errors.Is(err, os.ErrNotExist) {
			return nil, st, errNoSuchPath(path, ref)
		}
		return nil, st, err
	}
	rebase := base
	if strings.HasSuffix(path, "/.") {
		rebase = "."
	}
	rc, err := archive.TarWithOptions(filepath.Dir(full), &archive.TarOptions{
		Compression:  archive.Uncompressed,
		IncludeFiles: []string{filepath.Base(full)},
		RebaseNames:  map[string]string{filepath.Base(full): rebase},
	})
	if err != nil {
		unmount()
		return nil, st, err
	}
	d.event(c, events.ActionArchivePath, map[string]string{"path": path})
	return &closeFunc{ReadCloser: rc, after: unmount}, st, nil
}

type closeFunc struct {
	io.ReadCloser
	after func()
}

func (c *closeFunc) Close() error {
	err := c.ReadCloser.Close()
	c.after()
	return err
}

// ExtractToDir is PUT /containers/{id}/archive: it unpacks the tar r in
// the directory path of the container, owned by root unless copyUIDGID.
// Errors as dockerd's: a missing path 404, not a directory 400, a
// read-only root filesystem 403.
func (d *Daemon) ExtractToDir(ctx context.Context, ref, path string, noOverwriteDirNonDir, copyUIDGID bool, r io.Reader) error {
	c, err := d.get(ref)
	if err != nil {
		return err
	}
	_, host := c.snapshot()
	if host.ReadonlyRootfs {
		return errdefs.ErrPermissionDenied.WithMessage("container rootfs is marked read-only")
	}
	rootfs, unmount, err := d.mountRootfs(c)
	if err != nil {
		return err
	}
	defer unmount()
	full, err := securejoin.SecureJoin(rootfs, path)
	if err != nil {
		return err
	}
	fi, err := os.Stat(full)
	if errors.Is(err, os.ErrNotExist) {
		return errNoSuchPath(path, ref)
	}
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return errdefs.ErrInvalidArgument.WithMessage("extraction point is not a directory")
	}
	opts := &archive.TarOptions{NoOverwriteDirNonDir: noOverwriteDirNonDir}
	if !copyUIDGID {
		opts.ChownOpts = &idtools.IDPair{UID: 0, GID: 0}
	}
	if err := archive.Untar(r, full, opts); err != nil {
		return errdefs.ErrInvalidArgument.WithMessage(err.Error())
	}
	d.event(c, events.ActionExtractToDir, map[string]string{"path": path})
	return nil
}

// Export is GET /containers/{id}/export: a tar of the whole root
// filesystem. The reader must be closed.
func (d *Daemon) Export(ctx context.Context, ref string) (io.ReadCloser, error) {
	c, err := d.get(ref)
	if err != nil {
		return nil, err
	}
	rootfs, unmount, err := d.mountRootfs(c)
	if err != nil {
		return nil, err
	}
	rc, err := archive.Tar(rootfs, archive.Uncompressed)
	if err != nil {
		unmount()
		return nil, err
	}
	d.event(c, events.ActionExport, nil)
	return &closeFunc{ReadCloser: rc, after: unmount}, nil
}

// Changes is GET /containers/{id}/changes: the files added, changed and
// deleted in the container's layer.
func (d *Daemon) Changes(ctx context.Context, ref string) ([]container.FilesystemChange, error) {
	c, err := d.get(ref)
	if err != nil {
		return nil, err
	}
	cs := d.o.Store.Containers()
	sc, err := cs.Container(c.ID())
	if err != nil {
		return nil, err
	}
	changes, err := cs.Changes("", sc.LayerID)
	if err != nil {
		return nil, err
	}
	out := make([]container.FilesystemChange, 0, len(changes))
	for _, ch := range changes {
		out = append(out, container.FilesystemChange{Kind: container.ChangeType(ch.Kind), Path: ch.Path})
	}
	return out, nil
}
