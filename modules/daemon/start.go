package daemon

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/containerd/errdefs"
	securejoin "github.com/cyphar/filepath-securejoin"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/sys/user"
	"github.com/opencontainers/runtime-spec/specs-go"
	"go.uber.org/zap"

	"github.com/wharfd/wharfd/modules/runtime"
)

// startKind says who starts a container.
type startKind int

const (
	// startUser is POST /containers/{id}/start (or restart): it resets
	// the restart count and the manual-stop mark.
	startUser startKind = iota
	// startRestore is a restart policy applied at boot.
	startRestore
	// startPolicy is a restart by the policy after an exit.
	startPolicy
)

// Restart policy backoff, as dockerd's restart manager: 100ms doubling
// up to a minute, back to 100ms after a run of at least 10 seconds.
const (
	backoffInitial = 100 * time.Millisecond
	backoffMax     = time.Minute
	backoffReset   = 10 * time.Second
)

// Start is POST /containers/{id}/start. A running container is
// errdefs.ErrNotModified (304, as dockerd); a paused one a conflict. A
// failed start records its error and exit code (127 for a missing
// command, 126 for one that cannot run) and leaves no mount, cgroup or
// process behind.
func (d *Daemon) Start(ctx context.Context, ref string) error {
	c, err := d.get(ref)
	if err != nil {
		return err
	}
	return d.start(ctx, c, startUser)
}

// start runs the container once.
func (d *Daemon) start(ctx context.Context, c *Container, kind startKind) (retErr error) {
	c.op.Lock()
	defer c.op.Unlock()
	if d.isShuttingDown() {
		return errdefs.ErrUnavailable.WithMessage(errShuttingDown.Error())
	}
	c.mu.Lock()
	st := c.rec.State
	switch {
	case st.Removing || st.Dead:
		c.mu.Unlock()
		return errdefs.ErrConflict.WithMessage("container is marked for removal and cannot be started")
	case st.Paused:
		c.mu.Unlock()
		return errdefs.ErrConflict.WithMessage("cannot start a paused container, try unpause instead")
	case st.Running:
		c.mu.Unlock()
		return errdefs.ErrNotModified.WithMessage("container already started")
	}
	if kind == startUser {
		c.cancelRestartLocked()
		c.rec.RestartCount = 0
		c.rec.HasBeenManuallyStopped = false
		c.backoff = 0
	}
	if kind != startPolicy {
		c.rec.State.Restarting = false
	}
	rec, host := c.rec, c.host
	s := c.streams
	c.mu.Unlock()

	defer func() {
		if retErr == nil {
			return
		}
		code := 128
		var se *runtime.StartError
		if errors.As(retErr, &se) {
			code = se.ExitCode
		}
		c.mu.Lock()
		c.rec.State.Error = retErr.Error()
		c.rec.State.ExitCode = code
		c.rec.State.Restarting = false
		if c.streams == s {
			c.streams = newStreams(c.rec.Config.OpenStdin)
		}
		c.saveOrLog(d.log)
		c.notifyLocked()
		autoRemove := c.host.AutoRemove
		c.mu.Unlock()
		s.close()
		if autoRemove && kind == startUser {
			// As dockerd: a --rm container that cannot start is removed
			// (the CLI waits for that).
			d.bg.Add(1)
			go func() {
				defer d.bg.Done()
				if err := d.Remove(context.Background(), rec.ID, RemoveOptions{Force: true, Volumes: true}); err != nil && !errdefs.IsNotFound(err) {
					d.log.Warn("cannot remove container", zap.String("container", rec.ID), zap.Error(err))
				}
			}()
		}
	}()

	cs := d.o.Store.Containers()
	rootfs, err := cs.Mount(rec.ID, "")
	if err != nil {
		return fmt.Errorf("mount container layer: %w", err)
	}
	mounted := true
	defer func() {
		if retErr != nil && mounted {
			_, _ = cs.Unmount(rec.ID, false)
		}
	}()
	o, err := d.specOptions(&rec, host, rootfs)
	if err != nil {
		return err
	}
	if err := d.withInit(&o, host); err != nil {
		return err
	}
	if err := resolveUser(rootfs, rec.Config.User, host.GroupAdd, &o); err != nil {
		return err
	}
	if o.Cwd != "" && o.Cwd != "/" {
		if p, err := securejoin.SecureJoin(rootfs, o.Cwd); err == nil {
			_ = os.MkdirAll(p, 0o755)
		}
	}
	// Networking (network.go): namespace, endpoints, ports, embedded
	// DNS; released when the start fails.
	netUndo, err := d.startNetworking(ctx, c, &rec, host, &o)
	if err != nil {
		return err
	}
	defer func() {
		if retErr != nil {
			netUndo()
		}
	}()
	mounts, err := d.writeEtcFiles(c, &rec, host)
	if err != nil {
		return err
	}
	// Volumes, binds and --mount tmpfs (mounts.go), unmounted when the
	// run ends or, here, when the start fails.
	points, err := d.setupMounts(&rec)
	if err != nil {
		return err
	}
	defer func() {
		if retErr != nil {
			d.unmountVolumes(c)
		}
	}()
	o.Mounts = withMounts(points, append(mounts, o.Mounts...))
	spec, _, err := runtime.DefaultSpec(o)
	if err != nil {
		return err
	}
	spec.Linux.RootfsPropagation = rootPropagation(points)
	rc, err := d.o.Runtime.Create(ctx, rec.ID, spec)
	if err != nil {
		return err
	}
	if err := c.log.open(); err != nil {
		_ = rc.Destroy(context.Background())
		return err
	}
	outW := &streamWriter{l: c.log, stream: "stdout"}
	errW := &streamWriter{l: c.log, stream: "stderr"}
	stdio := runtime.Stdio{
		Stdin:  s.stdin(),
		Stdout: multiWriter{outW, broadcast{s: s}},
		Stderr: multiWriter{errW, broadcast{s: s, stderr: true}},
	}
	proc, err := rc.Start(ctx, stdio)
	if err != nil {
		// Start destroyed the runtime container.
		c.log.close()
		return err
	}
	mounted = false

	c.mu.Lock()
	c.rc, c.proc = rc, proc
	c.stopping = false
	c.rec.State = State{Running: true, Pid: proc.Pid(), StartedAt: time.Now().UTC(), FinishedAt: c.rec.State.FinishedAt, Health: c.rec.State.Health}
	c.rec.HasBeenStartedBefore = true
	d.initHealthLocked(c) // health.go
	c.rec.AppArmorProfile = o.AppArmorProfile
	c.saveOrLog(d.log)
	c.notifyLocked()
	c.mu.Unlock()
	d.event(c, events.ActionStart, nil)

	d.bg.Add(1)
	go d.monitor(c, rc, proc, s, outW, errW)
	return nil
}

// monitor waits for the container's exit, releases its runtime
// container, mount and streams, records the exit and applies the
// restart policy or auto-removal.
func (d *Daemon) monitor(c *Container, rc *runtime.Container, proc *runtime.Process, s *streams, outs ...*streamWriter) {
	defer d.bg.Done()
	st, _ := proc.Wait(context.Background())
	c.stopHealth() // health.go
	for _, w := range outs {
		w.flush()
	}
	if err := rc.Destroy(context.Background()); err != nil {
		d.log.Warn("cannot destroy runtime container", zap.String("container", c.ID()), zap.Error(err))
	}
	d.stopNetworking(c) // endpoints, DNS and namespace released (network.go)
	if _, err := d.o.Store.Containers().Unmount(c.ID(), false); err != nil {
		d.log.Warn("cannot unmount container layer", zap.String("container", c.ID()), zap.Error(err))
	}
	d.unmountVolumes(c) // mounts.go
	c.log.close()
	s.close()

	c.mu.Lock()
	c.rc, c.proc = nil, nil
	c.streams = newStreams(c.rec.Config.OpenStdin)
	ran := st.ExitedAt.Sub(c.rec.State.StartedAt)
	c.rec.State.Running, c.rec.State.Paused, c.rec.State.Pid = false, false, 0
	c.rec.State.ExitCode = st.Code
	c.rec.State.OOMKilled = st.OOMKilled
	c.rec.State.FinishedAt = st.ExitedAt.UTC()
	c.exits++
	host := c.host
	restart := !c.stopping && !d.isShuttingDown() &&
		shouldRestart(host.RestartPolicy, st.Code, c.rec.HasBeenManuallyStopped, c.rec.RestartCount, false)
	var delay time.Duration
	if restart {
		switch {
		case ran >= backoffReset || c.backoff == 0:
			c.backoff = backoffInitial
		default:
			c.backoff = min(2*c.backoff, backoffMax)
		}
		delay = c.backoff
		c.rec.State.Restarting = true
		c.rec.RestartCount++
		c.restartCancel = make(chan struct{})
	}
	c.saveOrLog(d.log)
	c.notifyLocked()
	cancel := c.restartCancel
	c.mu.Unlock()

	if st.OOMKilled {
		d.event(c, events.ActionOOM, nil)
	}
	d.event(c, events.ActionDie, map[string]string{"exitCode": strconv.Itoa(st.Code)})
	switch {
	case restart:
		d.bg.Add(1)
		go func() {
			defer d.bg.Done()
			t := time.NewTimer(delay)
			defer t.Stop()
			select {
			case <-cancel:
				return
			case <-t.C:
			}
			if err := d.start(context.Background(), c, startPolicy); err != nil {
				d.log.Warn("restart policy: cannot start container", zap.String("container", c.ID()), zap.Error(err))
			}
		}()
	case host.AutoRemove && !d.isShuttingDown():
		d.bg.Add(1)
		go func() {
			defer d.bg.Done()
			if err := d.Remove(context.Background(), c.ID(), RemoveOptions{Force: true, Volumes: true}); err != nil && !errdefs.IsNotFound(err) {
				d.log.Warn("cannot remove container", zap.String("container", c.ID()), zap.Error(err))
			}
		}()
	}
}

// cancelRestartLocked cancels a pending restart by the policy. c.mu must
// be held.
func (c *Container) cancelRestartLocked() {
	if c.restartCancel != nil {
		select {
		case <-c.restartCancel:
		default:
			close(c.restartCancel)
		}
		c.restartCancel = nil
	}
	if c.rec.State.Restarting {
		c.rec.State.Restarting = false
	}
}

// specOptions turns a container's config and host config into the
// runtime's options. The user is resolved later, in the root filesystem.
func (d *Daemon) specOptions(rec *Record, h *container.HostConfig, rootfs string) (runtime.SpecOptions, error) {
	cfg := rec.Config
	o := runtime.SpecOptions{
		Rootfs:         rootfs,
		ReadonlyRootfs: h.ReadonlyRootfs,
		Args:           append([]string{rec.Path}, rec.Args...),
		Env:            containerEnv(cfg),
		Cwd:            cfg.WorkingDir,
		Terminal:       cfg.Tty,
		Hostname:       cfg.Hostname,
		Domainname:     cfg.Domainname,
		Privileged:     h.Privileged,
		CapAdd:         h.CapAdd,
		CapDrop:        h.CapDrop,
		OOMScoreAdj:    h.OomScoreAdj,
		ShmSize:        h.ShmSize,
		Tmpfs:          h.Tmpfs,
		Sysctls:        h.Sysctls,

		Memory:            h.Memory,
		MemorySwap:        h.MemorySwap,
		MemoryReservation: h.MemoryReservation,
		NanoCPUs:          h.NanoCPUs,
		CPUQuota:          h.CPUQuota,
		CpusetCpus:        h.CpusetCpus,
		CpusetMems:        h.CpusetMems,
		BlkioWeight:       h.BlkioWeight,
	}
	if h.ConsoleSize[0] > 0 || h.ConsoleSize[1] > 0 {
		o.ConsoleHeight, o.ConsoleWidth = h.ConsoleSize[0], h.ConsoleSize[1]
	}
	if h.CPUShares > 0 {
		o.CPUShares = uint64(h.CPUShares)
	}
	if h.CPUPeriod > 0 {
		o.CPUPeriod = uint64(h.CPUPeriod)
	}
	if h.OomKillDisable != nil {
		o.OOMKillDisable = *h.OomKillDisable
	}
	if h.PidsLimit != nil {
		o.PidsLimit = *h.PidsLimit
	}
	if d.o.AppArmorProfile != "" {
		o.AppArmorProfile = d.o.AppArmorProfile
	}
	for _, opt := range h.SecurityOpt {
		k, v, ok := strings.Cut(opt, "=")
		if !ok {
			k, v, ok = strings.Cut(opt, ":")
		}
		switch {
		case k == "no-new-privileges":
			if !ok {
				v = "true"
			}
			b, err := strconv.ParseBool(v)
			if err != nil {
				return o, errdefs.ErrInvalidArgument.WithMessage("invalid --security-opt 2: " + strconv.Quote(opt))
			}
			o.NoNewPrivileges = b
		case k == "seccomp" && ok:
			o.SeccompProfile = v
		case k == "apparmor" && ok:
			o.AppArmorProfile = v
		case k == "label" && ok, k == "systempaths" && v == "unconfined":
			if k == "systempaths" {
				// Accepted; the runtime masks the default paths.
				continue
			}
		default:
			return o, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid --security-opt 1: %q", opt))
		}
	}
	if d.o.Config != nil {
		for _, u := range d.o.Config.DefaultUlimits {
			o.Rlimits = append(o.Rlimits, specs.POSIXRlimit{Type: ulimitName(u.Name), Soft: uint64(u.Soft), Hard: uint64(u.Hard)})
		}
	}
	for _, u := range h.Ulimits {
		if u == nil {
			continue
		}
		r := specs.POSIXRlimit{Type: ulimitName(u.Name), Soft: uint64(u.Soft), Hard: uint64(u.Hard)}
		o.Rlimits = slices.DeleteFunc(o.Rlimits, func(x specs.POSIXRlimit) bool { return x.Type == r.Type })
		o.Rlimits = append(o.Rlimits, r)
	}
	switch string(h.NetworkMode) {
	case NetworkHost:
		o.Network = runtime.NamespaceHost
	default:
		o.Network = runtime.NamespacePrivate
	}
	switch h.IpcMode {
	case container.IPCModeHost:
		o.IPC = runtime.NamespaceHost
	case "", container.IPCModePrivate, container.IPCModeShareable, container.IPCModeNone:
	default:
		return o, errdefs.ErrNotImplemented.WithMessage(fmt.Sprintf("IPC mode %s is not supported", h.IpcMode))
	}
	switch h.PidMode {
	case "host":
		o.PID = runtime.NamespaceHost
	case "":
	default:
		return o, errdefs.ErrNotImplemented.WithMessage(fmt.Sprintf("PID mode %s is not supported", h.PidMode))
	}
	switch h.CgroupnsMode {
	case container.CgroupnsModeHost:
		o.CgroupNamespace = runtime.NamespaceHost
	case container.CgroupnsModePrivate:
		o.CgroupNamespace = runtime.NamespacePrivate
	}
	if o.Hostname == "" {
		o.Hostname = rec.ID[:12]
	}
	return o, nil
}

// containerEnv is dockerd's process environment: PATH (unless the config
// has one), HOSTNAME, TERM=xterm with a TTY, then the config's variables
// replacing or adding.
func containerEnv(cfg *container.Config) []string {
	env := []string{"PATH=" + runtime.DefaultPathEnv, "HOSTNAME=" + cfg.Hostname}
	if cfg.Tty {
		env = append(env, "TERM=xterm")
	}
	for _, e := range cfg.Env {
		k, _, _ := strings.Cut(e, "=")
		i := slices.IndexFunc(env, func(x string) bool { return strings.HasPrefix(x, k+"=") })
		if i >= 0 {
			env[i] = e
		} else {
			env = append(env, e)
		}
	}
	return env
}

// resolveUser sets the process's user from spec (name, uid, name:group,
// uid:gid) looked up in the root filesystem's /etc/passwd and
// /etc/group, plus the additional groups, as dockerd.
func resolveUser(rootfs, spec string, groupAdd []string, o *runtime.SpecOptions) error {
	passwd, err := securejoin.SecureJoin(rootfs, "/etc/passwd")
	if err != nil {
		return err
	}
	group, err := securejoin.SecureJoin(rootfs, "/etc/group")
	if err != nil {
		return err
	}
	u, err := user.GetExecUserPath(spec, &user.ExecUser{Home: "/"}, passwd, group)
	if err != nil {
		return errdefs.ErrInvalidArgument.WithMessage(err.Error())
	}
	o.UID, o.GID = uint32(u.Uid), uint32(u.Gid)
	for _, g := range u.Sgids {
		o.AdditionalGIDs = append(o.AdditionalGIDs, uint32(g))
	}
	if len(groupAdd) > 0 {
		gids, err := user.GetAdditionalGroupsPath(groupAdd, group)
		if err != nil {
			return errdefs.ErrInvalidArgument.WithMessage(err.Error())
		}
		for _, g := range gids {
			o.AdditionalGIDs = append(o.AdditionalGIDs, uint32(g))
		}
	}
	if !slices.ContainsFunc(o.Env, func(e string) bool { return strings.HasPrefix(e, "HOME=") }) {
		o.Env = append(o.Env, "HOME="+u.Home)
	}
	return nil
}

// writeEtcFiles writes the container's hostname, hosts and resolv.conf
// and returns their bind mounts.
func (d *Daemon) writeEtcFiles(c *Container, rec *Record, h *container.HostConfig) ([]specs.Mount, error) {
	hostname := rec.Config.Hostname
	if hostname == "" {
		hostname = rec.ID[:12]
	}
	// hosts and resolv.conf per network mode (network.go).
	hosts, err := d.hostsContent(c, rec, h)
	if err != nil {
		return nil, err
	}
	resolv, err := d.resolvConfContent(c, rec, h)
	if err != nil {
		return nil, err
	}
	files := []struct{ name, dst, body string }{
		{hostnameFile, "/etc/hostname", hostname + "\n"},
		{hostsFile, "/etc/hosts", hosts},
		{resolvConfFile, "/etc/resolv.conf", resolv},
	}
	var mounts []specs.Mount
	for _, f := range files {
		p := c.path(f.name)
		if err := os.WriteFile(p, []byte(f.body), 0o644); err != nil {
			return nil, fmt.Errorf("write %s: %w", f.name, err)
		}
		opts := []string{"rbind", "rprivate"}
		if h.ReadonlyRootfs {
			opts = append(opts, "ro")
		}
		mounts = append(mounts, specs.Mount{Destination: f.dst, Type: "bind", Source: p, Options: opts})
	}
	return mounts, nil
}

// resolvConf builds the container's resolv.conf from the host's as
// dockerd: the host's nameservers without loopback ones (kept with
// --network host), Google's public servers when none remains, and the
// DNS settings of the container or the daemon replacing the host's.
func (d *Daemon) resolvConf(h *container.HostConfig) (string, error) {
	b, err := os.ReadFile(d.o.ResolvConf)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", err
	}
	hostNet := string(h.NetworkMode) == NetworkHost
	var ns, search, opts []string
	var other []string
	for line := range strings.SplitSeq(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || strings.HasPrefix(f[0], "#") || strings.HasPrefix(f[0], ";") {
			continue
		}
		switch f[0] {
		case "nameserver":
			if len(f) > 1 && (hostNet || !isLoopback(f[1])) {
				ns = append(ns, f[1])
			}
		case "search", "domain":
			search = f[1:]
		case "options":
			opts = append(opts, f[1:]...)
		default:
			other = append(other, line)
		}
	}
	var cfgDNS, cfgSearch, cfgOpts []string
	if d.o.Config != nil {
		cfgDNS, cfgSearch, cfgOpts = d.o.Config.DNS, d.o.Config.DNSSearch, d.o.Config.DNSOpts
	}
	if len(h.DNS) > 0 {
		cfgDNS = nil
		for _, a := range h.DNS {
			cfgDNS = append(cfgDNS, a.String())
		}
	}
	if len(cfgDNS) > 0 {
		ns = cfgDNS
	}
	if len(h.DNSSearch) > 0 {
		cfgSearch = h.DNSSearch
	}
	if len(cfgSearch) > 0 {
		search = cfgSearch
	}
	if len(h.DNSOptions) > 0 {
		cfgOpts = h.DNSOptions
	}
	if len(cfgOpts) > 0 {
		opts = cfgOpts
	}
	if len(ns) == 0 && !hostNet {
		ns = []string{"8.8.8.8", "8.8.4.4"}
	}
	var out strings.Builder
	for _, l := range other {
		out.WriteString(l + "\n")
	}
	for _, n := range ns {
		out.WriteString("nameserver " + n + "\n")
	}
	if len(search) > 0 {
		out.WriteString("search " + strings.Join(search, " ") + "\n")
	}
	if len(opts) > 0 {
		out.WriteString("options " + strings.Join(opts, " ") + "\n")
	}
	return out.String(), nil
}

func isLoopback(ip string) bool {
	return strings.HasPrefix(ip, "127.") || ip == "::1"
}

var _ = filepath.Join
