package daemon

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/containerd/errdefs"
	units "github.com/docker/go-units"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/storage"
)

// timeString formats a state time as dockerd: RFC 3339 with nanoseconds,
// the zero time as 0001-01-01T00:00:00Z.
func timeString(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// Inspect is GET /containers/{id}/json, in the moby InspectResponse
// shape. size adds SizeRw and SizeRootFs.
func (d *Daemon) Inspect(ctx context.Context, ref string, size bool) (*container.InspectResponse, error) {
	c, err := d.get(ref)
	if err != nil {
		return nil, err
	}
	rec, host := c.snapshot()
	c.mu.Lock()
	execs := slices.Clone(c.execs)
	c.mu.Unlock()
	st := rec.State
	hc := *host
	cfg := *rec.Config
	args := rec.Args
	if args == nil {
		args = []string{}
	}
	resp := &container.InspectResponse{
		ID:      rec.ID,
		Created: timeString(rec.Created),
		Path:    rec.Path,
		Args:    args,
		State: &container.State{
			Status: st.Status(rec.HasBeenStartedBefore), Running: st.Running, Paused: st.Paused,
			Restarting: st.Restarting, OOMKilled: st.OOMKilled, Dead: st.Dead, Pid: st.Pid,
			ExitCode: st.ExitCode, Error: st.Error,
			StartedAt: timeString(st.StartedAt), FinishedAt: timeString(st.FinishedAt),
			Health: st.Health,
		},
		Image:           rec.Image,
		ResolvConfPath:  c.path(resolvConfFile),
		HostnamePath:    c.path(hostnameFile),
		HostsPath:       c.path(hostsFile),
		LogPath:         c.logPath(),
		Name:            rec.Name,
		RestartCount:    rec.RestartCount,
		Driver:          rec.Driver,
		Platform:        "linux",
		AppArmorProfile: rec.AppArmorProfile,
		ExecIDs:         execs,
		HostConfig:      &hc,
		GraphDriver:     &storage.DriverData{Name: rec.Driver, Data: map[string]string{}},
		Mounts:          apiMounts(&rec),
		Config:          &cfg,
		NetworkSettings: d.networkSettings(&rec, host),
	}
	if size {
		rw, rootfs := d.sizes(rec.ID)
		resp.SizeRw, resp.SizeRootFs = &rw, &rootfs
	}
	return resp, nil
}

// sizes returns the writable layer's size and the whole root
// filesystem's (image included), in bytes.
func (d *Daemon) sizes(id string) (rw, rootfs int64) {
	cs := d.o.Store.Containers()
	sc, err := cs.Container(id)
	if err != nil {
		return 0, 0
	}
	if n, err := cs.DiffSize("", sc.LayerID); err == nil {
		rw = n
	}
	if img, err := cs.Image(sc.ImageID); err == nil {
		for l := img.TopLayer; l != ""; {
			layer, err := cs.Layer(l)
			if err != nil {
				break
			}
			rootfs += layer.UncompressedSize
			l = layer.Parent
		}
	}
	return rw, rootfs + rw
}

// ListOptions are GET /containers/json's parameters.
type ListOptions struct {
	// All includes stopped containers.
	All bool
	// Limit returns the last Limit created containers (all states); 0
	// or less is no limit.
	Limit int
	// Size adds SizeRw and SizeRootFs.
	Size bool
	// Filters are the filters by key: status, name, id, label,
	// ancestor, exited, before, since, (volume, network, health,
	// publish, expose, is-task are accepted).
	Filters map[string][]string
}

var listFilters = map[string]bool{
	"status": true, "name": true, "id": true, "label": true, "ancestor": true, "exited": true,
	"before": true, "since": true, "volume": true, "network": true, "health": true,
	"publish": true, "expose": true, "is-task": true,
}

// List is GET /containers/json: the containers matching o, newest first.
// Unknown filter keys and bad values are 400 with dockerd's texts.
func (d *Daemon) List(ctx context.Context, o ListOptions) ([]container.Summary, error) {
	f := o.Filters
	for k := range f {
		if !listFilters[k] {
			return nil, errdefs.ErrInvalidArgument.WithMessage("invalid filter '" + k + "'")
		}
	}
	for _, s := range f["status"] {
		switch s {
		case "created", "restarting", "running", "removing", "paused", "exited", "dead":
		default:
			return nil, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid filter 'status=%s'", s))
		}
	}
	if err := checkHealthFilter(f["health"]); err != nil { // health.go
		return nil, err
	}
	var exited []int
	for _, s := range f["exited"] {
		n, err := strconv.Atoi(s)
		if err != nil {
			return nil, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid filter 'exited=%s'", s))
		}
		exited = append(exited, n)
	}
	all := d.list()
	var before, since time.Time
	for _, key := range []string{"before", "since"} {
		for _, ref := range f[key] {
			c, err := d.get(ref)
			if err != nil {
				return nil, err
			}
			r, _ := c.snapshot()
			if key == "before" {
				before = r.Created
			} else {
				since = r.Created
			}
		}
	}
	var ancestors []string
	for _, a := range f["ancestor"] {
		if img, err := d.o.Images.Resolve(ctx, a); err == nil {
			ancestors = append(ancestors, img.FullID())
		} else {
			ancestors = append(ancestors, a)
		}
	}
	var out []container.Summary
	for _, c := range all {
		rec, host := c.snapshot()
		status := rec.State.Status(rec.HasBeenStartedBefore)
		if !o.All && o.Limit <= 0 && len(f["status"]) == 0 && len(exited) == 0 && !rec.State.Running {
			continue
		}
		if v := f["status"]; len(v) > 0 && !slices.Contains(v, string(status)) {
			continue
		}
		if len(exited) > 0 && (status != container.StateExited || !slices.Contains(exited, rec.State.ExitCode)) {
			continue
		}
		if v := f["name"]; len(v) > 0 && !slices.ContainsFunc(v, func(n string) bool { return strings.Contains(rec.Name, n) }) {
			continue
		}
		if v := f["id"]; len(v) > 0 && !slices.ContainsFunc(v, func(p string) bool { return strings.HasPrefix(rec.ID, p) }) {
			continue
		}
		if !matchHealth(f["health"], rec.State.Health) {
			continue
		}
		if !matchLabels(f["label"], rec.Config.Labels) {
			continue
		}
		if len(ancestors) > 0 && !slices.ContainsFunc(ancestors, func(a string) bool {
			return a == rec.Image || a == rec.Config.Image || strings.HasPrefix(strings.TrimPrefix(rec.Image, "sha256:"), a)
		}) {
			continue
		}
		if !before.IsZero() && !rec.Created.Before(before) {
			continue
		}
		if !since.IsZero() && !rec.Created.After(since) {
			continue
		}
		if v := f["network"]; len(v) > 0 && !d.onNetwork(&rec, host, v) {
			continue
		}
		out = append(out, d.summary(&rec, host, o.Size))
		if o.Limit > 0 && len(out) >= o.Limit {
			break
		}
	}
	if out == nil {
		out = []container.Summary{}
	}
	return out, nil
}

// matchLabels reports whether labels has every key or key=value of want.
func matchLabels(want []string, labels map[string]string) bool {
	for _, w := range want {
		k, v, hasValue := strings.Cut(w, "=")
		got, ok := labels[k]
		if !ok || hasValue && got != v {
			return false
		}
	}
	return true
}

// summary is a container as GET /containers/json lists it.
func (d *Daemon) summary(rec *Record, h *container.HostConfig, size bool) container.Summary {
	cmd := rec.Path
	if len(rec.Args) > 0 {
		cmd += " " + strings.Join(rec.Args, " ")
	}
	s := container.Summary{
		ID: rec.ID, Names: []string{rec.Name}, Image: rec.Config.Image, ImageID: rec.Image,
		Command: cmd, Created: rec.Created.Unix(), Ports: portSummaries(rec),
		Labels: maps.Clone(rec.Config.Labels), State: rec.State.Status(rec.HasBeenStartedBefore),
		Status:          statusString(rec),
		Health:          healthSummary(&rec.State),
		NetworkSettings: d.networkSummary(rec, h),
		Mounts:          apiMounts(rec),
	}
	if s.Labels == nil {
		s.Labels = map[string]string{}
	}
	s.HostConfig.NetworkMode = string(h.NetworkMode)
	if size {
		s.SizeRw, s.SizeRootFs = d.sizes(rec.ID)
	}
	return s
}

// statusString is the human status of docker ps, as dockerd's
// State.String: "Up 3 seconds", "Up 2 minutes (Paused)", "Restarting (1)
// 2 seconds ago", "Exited (0) 5 seconds ago", "Created", "Removal In
// Progress", "Dead".
func statusString(rec *Record) string {
	st := rec.State
	now := time.Now()
	switch {
	case st.Running && st.Paused:
		return "Up " + units.HumanDuration(now.Sub(st.StartedAt)) + " (Paused)"
	case st.Restarting:
		return fmt.Sprintf("Restarting (%d) %s ago", st.ExitCode, units.HumanDuration(now.Sub(st.FinishedAt)))
	case st.Running:
		return "Up " + units.HumanDuration(now.Sub(st.StartedAt)) + healthSuffix(st.Health)
	case st.Removing:
		return "Removal In Progress"
	case st.Dead:
		return "Dead"
	case st.StartedAt.IsZero() && st.FinishedAt.IsZero():
		return "Created"
	case st.FinishedAt.IsZero():
		return ""
	}
	return fmt.Sprintf("Exited (%d) %s ago", st.ExitCode, units.HumanDuration(now.Sub(st.FinishedAt)))
}

// DiskUsage is the containers' share of GET /system/df.
func (d *Daemon) DiskUsage(ctx context.Context, verbose bool) (*container.DiskUsage, error) {
	du := &container.DiskUsage{}
	for _, c := range d.list() {
		rec, host := c.snapshot()
		s := d.summary(&rec, host, true)
		du.TotalCount++
		du.TotalSize += s.SizeRw
		if rec.State.Running {
			du.ActiveCount++
		} else {
			du.Reclaimable += s.SizeRw
		}
		if verbose {
			du.Items = append(du.Items, s)
		}
	}
	return du, nil
}

// PruneOptions are POST /containers/prune's filters: until (a time or
// duration) and label / label! .
type PruneOptions struct {
	// Filters by key.
	Filters map[string][]string
}

// Prune is POST /containers/prune: it removes every stopped container
// matching the filters and reports their IDs and the space reclaimed.
func (d *Daemon) Prune(ctx context.Context, o PruneOptions) (container.PruneReport, error) {
	report := container.PruneReport{ContainersDeleted: []string{}}
	for k := range o.Filters {
		if k != "until" && k != "label" && k != "label!" {
			return report, errdefs.ErrInvalidArgument.WithMessage("invalid filter '" + k + "'")
		}
	}
	var until time.Time
	for _, v := range o.Filters["until"] {
		t, err := parseTime(v)
		if err != nil {
			return report, err
		}
		until = t
	}
	for _, c := range d.list() {
		rec, _ := c.snapshot()
		if rec.State.Running || rec.State.Restarting || rec.State.Removing {
			continue
		}
		if !until.IsZero() && !rec.Created.Before(until) {
			continue
		}
		if !matchLabels(o.Filters["label"], rec.Config.Labels) {
			continue
		}
		if neg := o.Filters["label!"]; len(neg) > 0 && slices.ContainsFunc(neg, func(l string) bool { return matchLabels([]string{l}, rec.Config.Labels) }) {
			continue
		}
		rw, _ := d.sizes(rec.ID)
		if err := d.Remove(ctx, rec.ID, RemoveOptions{}); err != nil {
			continue
		}
		report.ContainersDeleted = append(report.ContainersDeleted, rec.ID)
		report.SpaceReclaimed += uint64(rw)
	}
	return report, nil
}

// parseTime parses a filter or query time as dockerd: Unix seconds with
// an optional fraction, RFC 3339, or a duration before now ("10m").
func parseTime(v string) (time.Time, error) {
	if dur, err := time.ParseDuration(v); err == nil {
		return time.Now().Add(-dur), nil
	}
	if sec, frac, ok := strings.Cut(v, "."); ok || v != "" {
		if s, err := strconv.ParseInt(sec, 10, 64); err == nil {
			var ns int64
			if ok {
				frac = (frac + "000000000")[:9]
				if n, err := strconv.ParseInt(frac, 10, 64); err == nil {
					ns = n
				}
			}
			return time.Unix(s, ns), nil
		}
	}
	for _, layout := range []string{time.RFC3339Nano, time.RFC3339, "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.Parse(layout, v); err == nil {
			return t, nil
		}
	}
	return time.Time{}, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("failed to parse value as time or duration: %q", v))
}

// ParseTime is parseTime for the router's since/until parameters.
func ParseTime(v string) (time.Time, error) { return parseTime(v) }
