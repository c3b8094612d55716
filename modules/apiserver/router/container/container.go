package container

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"go.uber.org/fx"

	"github.com/wharfd/wharfd/modules/apiserver"
	"github.com/wharfd/wharfd/modules/apiserver/router/image"
	"github.com/wharfd/wharfd/modules/apiserver/router/system"
	"github.com/wharfd/wharfd/modules/daemon"
)

// Backend is what the container routes use of the daemon.
type Backend interface {
	Create(ctx context.Context, name string, req container.CreateRequest) (container.CreateResponse, error)
	Start(ctx context.Context, ref string) error
	Stop(ctx context.Context, ref string, o daemon.StopOptions) error
	Kill(ctx context.Context, ref, signal string) error
	Restart(ctx context.Context, ref string, o daemon.StopOptions) error
	Pause(ctx context.Context, ref string) error
	Unpause(ctx context.Context, ref string) error
	Wait(ref, condition string) (daemon.WaitFunc, error)
	Remove(ctx context.Context, ref string, o daemon.RemoveOptions) error
	Attach(ctx context.Context, ref string, o daemon.AttachOptions) error
	Logs(ctx context.Context, ref string, o daemon.LogsOptions, emit func(daemon.LogMessage) error) (bool, error)
	Resize(ctx context.Context, ref string, height, width uint16) error
	Top(ctx context.Context, ref, psArgs string) (container.TopResponse, error)
	Stats(ctx context.Context, ref string, stream, oneShot bool, emit func(*container.StatsResponse) error) error
	List(ctx context.Context, o daemon.ListOptions) ([]container.Summary, error)
	Inspect(ctx context.Context, ref string, size bool) (*container.InspectResponse, error)
	Rename(ctx context.Context, ref, name string) error
	Update(ctx context.Context, ref string, u container.UpdateConfig) ([]string, error)
	Changes(ctx context.Context, ref string) ([]container.FilesystemChange, error)
	Export(ctx context.Context, ref string) (io.ReadCloser, error)
	StatPath(ctx context.Context, ref, path string) (container.PathStat, error)
	ArchivePath(ctx context.Context, ref, path string) (io.ReadCloser, container.PathStat, error)
	ExtractToDir(ctx context.Context, ref, path string, noOverwriteDirNonDir, copyUIDGID bool, r io.Reader) error
	Prune(ctx context.Context, o daemon.PruneOptions) (container.PruneReport, error)
	ExecCreate(ctx context.Context, ref string, req container.ExecCreateRequest) (string, error)
	ExecStart(ctx context.Context, id string, o daemon.ExecStartOptions) error
	ExecTTY(id string) (bool, error)
	ExecInspect(id string) (container.ExecInspectResponse, error)
	ExecResize(id string, height, width uint16) error
	ContainerCounts() (running, paused, stopped int)
	DiskUsage(ctx context.Context, verbose bool) (*container.DiskUsage, error)
}

var _ Backend = (*daemon.Daemon)(nil)

// Result is what stage 5 container provides: the routes, the container
// counts and init binary of /info, the containers' share of /system/df
// and, for the image stage's DELETE /images/{name}, which containers use
// an image.
type Result struct {
	fx.Out

	Routes     []apiserver.Route `group:"routes,flatten"`
	Containers system.Containers
	Init       system.Init
	ImageUsers image.ContainerUsers
	DiskUsage  system.DiskUsage `group:"diskusage"`
	// Plugins is /info's Log plugins: the one log driver, json-file.
	Plugins system.PluginSet `group:"plugins"`
}

// New is stage 5 container: the container routes over the daemon.
func New(d *daemon.Daemon) Result {
	return Result{Routes: Routes(d), Containers: d, Init: d, ImageUsers: d, DiskUsage: diskUsage{d},
		Plugins: system.PluginSet{Kind: "Log", Names: []string{daemon.LogDriverJSONFile}}}
}

type diskUsage struct{ b Backend }

func (u diskUsage) DiskUsage(ctx context.Context, verbose bool) (system.Usage, error) {
	du, err := u.b.DiskUsage(ctx, verbose)
	if err != nil {
		return system.Usage{}, err
	}
	return system.Usage{Containers: du}, nil
}

// Routes returns the container and exec routes over b.
func Routes(b Backend) []apiserver.Route {
	r := &router{b: b}
	return []apiserver.Route{
		{Method: http.MethodGet, Path: "/containers/json", Handler: r.list},
		{Method: http.MethodPost, Path: "/containers/create", Handler: r.create},
		{Method: http.MethodPost, Path: "/containers/prune", Handler: r.prune},
		{Method: http.MethodGet, Path: "/containers/{name}/json", Handler: r.inspect},
		{Method: http.MethodGet, Path: "/containers/{name}/top", Handler: r.top},
		{Method: http.MethodGet, Path: "/containers/{name}/logs", Handler: r.logs},
		{Method: http.MethodGet, Path: "/containers/{name}/changes", Handler: r.changes},
		{Method: http.MethodGet, Path: "/containers/{name}/export", Handler: r.export},
		{Method: http.MethodGet, Path: "/containers/{name}/stats", Handler: r.stats},
		{Method: http.MethodPost, Path: "/containers/{name}/resize", Handler: r.resize},
		{Method: http.MethodPost, Path: "/containers/{name}/start", Handler: r.start},
		{Method: http.MethodPost, Path: "/containers/{name}/stop", Handler: r.stop},
		{Method: http.MethodPost, Path: "/containers/{name}/restart", Handler: r.restart},
		{Method: http.MethodPost, Path: "/containers/{name}/kill", Handler: r.kill},
		{Method: http.MethodPost, Path: "/containers/{name}/update", Handler: r.update},
		{Method: http.MethodPost, Path: "/containers/{name}/rename", Handler: r.rename},
		{Method: http.MethodPost, Path: "/containers/{name}/pause", Handler: r.pause},
		{Method: http.MethodPost, Path: "/containers/{name}/unpause", Handler: r.unpause},
		{Method: http.MethodPost, Path: "/containers/{name}/attach", Handler: r.attach},
		{Method: http.MethodPost, Path: "/containers/{name}/wait", Handler: r.wait},
		{Method: http.MethodDelete, Path: "/containers/{name}", Handler: r.remove},
		{Method: http.MethodHead, Path: "/containers/{name}/archive", Handler: r.statPath},
		{Method: http.MethodGet, Path: "/containers/{name}/archive", Handler: r.archive},
		{Method: http.MethodPut, Path: "/containers/{name}/archive", Handler: r.extract},
		{Method: http.MethodPost, Path: "/containers/{name}/exec", Handler: r.execCreate},
		{Method: http.MethodPost, Path: "/exec/{id}/start", Handler: r.execStart},
		{Method: http.MethodPost, Path: "/exec/{id}/resize", Handler: r.execResize},
		{Method: http.MethodGet, Path: "/exec/{id}/json", Handler: r.execInspect},
	}
}

type router struct{ b Backend }

func invalid(format string, args ...any) error {
	return errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf(format, args...))
}

// create is POST /containers/create?name=&platform=.
func (r *router) create(ctx context.Context, w http.ResponseWriter, req *http.Request, _ map[string]string) error {
	if err := apiserver.ParseForm(req); err != nil {
		return err
	}
	if err := apiserver.CheckForJSON(req); err != nil {
		return err
	}
	var body container.CreateRequest
	if err := json.NewDecoder(req.Body).Decode(&body); err != nil {
		return invalid("invalid JSON: %s", err.Error())
	}
	resp, err := r.b.Create(ctx, req.Form.Get("name"), body)
	if err != nil {
		return err
	}
	return apiserver.WriteJSON(w, http.StatusCreated, resp)
}

func noContent(w http.ResponseWriter) error {
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (r *router) start(ctx context.Context, w http.ResponseWriter, req *http.Request, vars map[string]string) error {
	if err := r.b.Start(ctx, vars["name"]); err != nil {
		return err
	}
	return noContent(w)
}

// stopOptions reads t (seconds) and signal.
func stopOptions(req *http.Request) (daemon.StopOptions, error) {
	if err := apiserver.ParseForm(req); err != nil {
		return daemon.StopOptions{}, err
	}
	o := daemon.StopOptions{Signal: req.Form.Get("signal")}
	if v := req.Form.Get("t"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return o, invalid("invalid value for t: %q", v)
		}
		o.Timeout = &n
	}
	return o, nil
}

func (r *router) stop(ctx context.Context, w http.ResponseWriter, req *http.Request, vars map[string]string) error {
	o, err := stopOptions(req)
	if err != nil {
		return err
	}
	if err := r.b.Stop(ctx, vars["name"], o); err != nil {
		return err
	}
	return noContent(w)
}

func (r *router) restart(ctx context.Context, w http.ResponseWriter, req *http.Request, vars map[string]string) error {
	o, err := stopOptions(req)
	if err != nil {
		return err
	}
	if err := r.b.Restart(ctx, vars["name"], o); err != nil {
		return err
	}
	return noContent(w)
}

func (r *router) kill(ctx context.Context, w http.ResponseWriter, req *http.Request, vars map[string]string) error {
	if err := apiserver.ParseForm(req); err != nil {
		return err
	}
	if err := r.b.Kill(ctx, vars["name"], req.Form.Get("signal")); err != nil {
		return err
	}
	return noContent(w)
}

func (r *router) pause(ctx context.Context, w http.ResponseWriter, _ *http.Request, vars map[string]string) error {
	if err := r.b.Pause(ctx, vars["name"]); err != nil {
		return err
	}
	return noContent(w)
}

func (r *router) unpause(ctx context.Context, w http.ResponseWriter, _ *http.Request, vars map[string]string) error {
	if err := r.b.Unpause(ctx, vars["name"]); err != nil {
		return err
	}
	return noContent(w)
}

// wait is POST /containers/{name}/wait?condition=: the header is sent at
// once (the wait is registered), the status code when the condition
// holds.
func (r *router) wait(ctx context.Context, w http.ResponseWriter, req *http.Request, vars map[string]string) error {
	if err := apiserver.ParseForm(req); err != nil {
		return err
	}
	wait, err := r.b.Wait(vars["name"], req.Form.Get("condition"))
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_ = http.NewResponseController(w).Flush()
	code, err := wait(ctx)
	resp := container.WaitResponse{StatusCode: int64(code)}
	if err != nil {
		if errors.Is(err, context.Canceled) {
			return nil
		}
		resp.Error = &container.WaitExitError{Message: err.Error()}
	}
	return json.NewEncoder(w).Encode(resp)
}

func (r *router) remove(ctx context.Context, w http.ResponseWriter, req *http.Request, vars map[string]string) error {
	if err := apiserver.ParseForm(req); err != nil {
		return err
	}
	err := r.b.Remove(ctx, vars["name"], daemon.RemoveOptions{
		Force: apiserver.BoolValue(req, "force"), Volumes: apiserver.BoolValue(req, "v"), Link: apiserver.BoolValue(req, "link"),
	})
	if err != nil {
		return err
	}
	return noContent(w)
}

func (r *router) resize(ctx context.Context, w http.ResponseWriter, req *http.Request, vars map[string]string) error {
	h, wd, err := size(req)
	if err != nil {
		return err
	}
	return r.b.Resize(ctx, vars["name"], h, wd)
}

// size reads h and w.
func size(req *http.Request) (uint16, uint16, error) {
	if err := apiserver.ParseForm(req); err != nil {
		return 0, 0, err
	}
	h, err := strconv.ParseUint(req.Form.Get("h"), 10, 16)
	if err != nil {
		return 0, 0, invalid("invalid resize height %q: %v", req.Form.Get("h"), err)
	}
	wd, err := strconv.ParseUint(req.Form.Get("w"), 10, 16)
	if err != nil {
		return 0, 0, invalid("invalid resize width %q: %v", req.Form.Get("w"), err)
	}
	return uint16(h), uint16(wd), nil
}

// logs is GET /containers/{name}/logs.
func (r *router) logs(ctx context.Context, w http.ResponseWriter, req *http.Request, vars map[string]string) error {
	if err := apiserver.ParseForm(req); err != nil {
		return err
	}
	o := daemon.LogsOptions{
		Stdout: apiserver.BoolValue(req, "stdout"), Stderr: apiserver.BoolValue(req, "stderr"),
		Follow: apiserver.BoolValue(req, "follow"), Tail: -1,
	}
	if !o.Stdout && !o.Stderr {
		return invalid("Bad parameters: you must choose at least one stream")
	}
	if v := req.Form.Get("tail"); v != "" && v != "all" {
		if n, err := strconv.Atoi(v); err == nil && n >= 0 {
			o.Tail = n
		}
	}
	for _, p := range []struct {
		key string
		t   *time.Time
	}{{"since", &o.Since}, {"until", &o.Until}} {
		if v := req.Form.Get(p.key); v != "" && v != "0" {
			t, err := daemon.ParseTime(v)
			if err != nil {
				return err
			}
			*p.t = t
		}
	}
	timestamps := apiserver.BoolValue(req, "timestamps")
	var stdout, stderr io.Writer
	started := false
	var tty bool
	rc := http.NewResponseController(w)
	emit := func(m daemon.LogMessage) error {
		if !started {
			started = true
			ct := "application/vnd.docker.multiplexed-stream"
			if tty {
				ct = "application/vnd.docker.raw-stream"
			}
			w.Header().Set("Content-Type", ct)
			w.WriteHeader(http.StatusOK)
			stdout, stderr = w, w
			if !tty {
				stdout, stderr = newStdWriter(w, stdcopy.Stdout), newStdWriter(w, stdcopy.Stderr)
			}
		}
		out := stdout
		if m.Stream == "stderr" {
			out = stderr
		}
		line := m.Log
		if timestamps {
			line = m.Time.Format("2006-01-02T15:04:05.000000000Z07:00") + " " + line
		}
		if _, err := io.WriteString(out, line); err != nil {
			return err
		}
		if o.Follow {
			_ = rc.Flush()
		}
		return nil
	}
	// The TTY flag is known once Logs has found the container; emit runs
	// after that.
	var err error
	tty, err = r.logsTTY(ctx, vars["name"])
	if err != nil {
		return err
	}
	if _, err := r.b.Logs(ctx, vars["name"], o, emit); err != nil {
		if started {
			return nil
		}
		return err
	}
	if !started {
		ct := "application/vnd.docker.multiplexed-stream"
		if tty {
			ct = "application/vnd.docker.raw-stream"
		}
		w.Header().Set("Content-Type", ct)
		w.WriteHeader(http.StatusOK)
	}
	return nil
}

// logsTTY reports whether the container has a TTY (its logs are then
// raw).
func (r *router) logsTTY(ctx context.Context, ref string) (bool, error) {
	c, err := r.b.Inspect(ctx, ref, false)
	if err != nil {
		return false, err
	}
	return c.Config.Tty, nil
}

func (r *router) top(ctx context.Context, w http.ResponseWriter, req *http.Request, vars map[string]string) error {
	if err := apiserver.ParseForm(req); err != nil {
		return err
	}
	resp, err := r.b.Top(ctx, vars["name"], req.Form.Get("ps_args"))
	if err != nil {
		return err
	}
	return apiserver.WriteJSON(w, http.StatusOK, resp)
}

// stats is GET /containers/{name}/stats?stream=&one-shot=.
func (r *router) stats(ctx context.Context, w http.ResponseWriter, req *http.Request, vars map[string]string) error {
	if err := apiserver.ParseForm(req); err != nil {
		return err
	}
	stream := apiserver.BoolValueOrDefault(req, "stream", true)
	oneShot := apiserver.BoolValue(req, "one-shot")
	if oneShot && stream {
		return invalid("cannot have stream=true and one-shot=true")
	}
	s := apiserver.NewJSONStream(w)
	err := r.b.Stats(ctx, vars["name"], stream, oneShot, func(st *container.StatsResponse) error { return s.Encode(st) })
	return s.Error(err)
}

func (r *router) list(ctx context.Context, w http.ResponseWriter, req *http.Request, _ map[string]string) error {
	if err := apiserver.ParseForm(req); err != nil {
		return err
	}
	f, err := apiserver.Filters(req)
	if err != nil {
		return err
	}
	limit, err := apiserver.Int64ValueOrDefault(req, "limit", 0)
	if err != nil {
		return err
	}
	list, err := r.b.List(ctx, daemon.ListOptions{
		All: apiserver.BoolValue(req, "all"), Limit: int(limit), Size: apiserver.BoolValue(req, "size"), Filters: f,
	})
	if err != nil {
		return err
	}
	if apiserver.VersionLess(apiserver.APIVersion(ctx), "1.52") {
		for i := range list {
			list[i].Health = nil // added in API 1.52
		}
	}
	return apiserver.WriteJSON(w, http.StatusOK, list)
}

func (r *router) inspect(ctx context.Context, w http.ResponseWriter, req *http.Request, vars map[string]string) error {
	if err := apiserver.ParseForm(req); err != nil {
		return err
	}
	resp, err := r.b.Inspect(ctx, vars["name"], apiserver.BoolValue(req, "size"))
	if err != nil {
		return err
	}
	if apiserver.VersionLess(apiserver.APIVersion(ctx), "1.52") {
		return writeWithBridgeFields(w, resp)
	}
	return apiserver.WriteJSON(w, http.StatusOK, resp)
}

// writeWithBridgeFields writes an inspect response for API < 1.52, which
// also has the default bridge's endpoint at the top of NetworkSettings
// (IPAddress, Gateway, MacAddress, …): deprecated since API 1.21, removed
// only in 1.52, and still read by `docker inspect -f
// '{{.NetworkSettings.IPAddress}}'`. dockerd back-fills the same eight
// fields, from the "bridge" network when the container is on it.
func writeWithBridgeFields(w http.ResponseWriter, resp *container.InspectResponse) error {
	var bridge *network.EndpointSettings
	if resp.NetworkSettings != nil {
		bridge = resp.NetworkSettings.Networks["bridge"]
	}
	if bridge == nil {
		return apiserver.WriteJSON(w, http.StatusOK, resp)
	}
	b, err := json.Marshal(resp)
	if err != nil {
		return fmt.Errorf("encode inspect response: %w", err)
	}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(b, &doc); err != nil {
		return fmt.Errorf("encode inspect response: %w", err)
	}
	var ns map[string]any
	if err := json.Unmarshal(doc["NetworkSettings"], &ns); err != nil {
		return fmt.Errorf("encode inspect response: %w", err)
	}
	ns["EndpointID"] = bridge.EndpointID
	ns["Gateway"] = bridge.Gateway
	ns["GlobalIPv6Address"] = bridge.GlobalIPv6Address
	ns["GlobalIPv6PrefixLen"] = bridge.GlobalIPv6PrefixLen
	ns["IPAddress"] = bridge.IPAddress
	ns["IPPrefixLen"] = bridge.IPPrefixLen
	ns["IPv6Gateway"] = bridge.IPv6Gateway
	ns["MacAddress"] = bridge.MacAddress
	if doc["NetworkSettings"], err = json.Marshal(ns); err != nil {
		return fmt.Errorf("encode inspect response: %w", err)
	}
	return apiserver.WriteJSON(w, http.StatusOK, doc)
}

func (r *router) rename(ctx context.Context, w http.ResponseWriter, req *http.Request, vars map[string]string) error {
	if err := apiserver.ParseForm(req); err != nil {
		return err
	}
	if err := r.b.Rename(ctx, vars["name"], req.Form.Get("name")); err != nil {
		return err
	}
	return noContent(w)
}

func (r *router) update(ctx context.Context, w http.ResponseWriter, req *http.Request, vars map[string]string) error {
	var u container.UpdateConfig
	if err := apiserver.ReadJSON(req, &u); err != nil {
		return err
	}
	warnings, err := r.b.Update(ctx, vars["name"], u)
	if err != nil {
		return err
	}
	return apiserver.WriteJSON(w, http.StatusOK, container.UpdateResponse{Warnings: warnings})
}

func (r *router) changes(ctx context.Context, w http.ResponseWriter, _ *http.Request, vars map[string]string) error {
	ch, err := r.b.Changes(ctx, vars["name"])
	if err != nil {
		return err
	}
	return apiserver.WriteJSON(w, http.StatusOK, ch)
}

func (r *router) export(ctx context.Context, w http.ResponseWriter, _ *http.Request, vars map[string]string) error {
	rc, err := r.b.Export(ctx, vars["name"])
	if err != nil {
		return err
	}
	defer rc.Close()
	w.Header().Set("Content-Type", "application/x-tar")
	w.WriteHeader(http.StatusOK)
	_, _ = io.Copy(w, rc)
	return nil
}

// pathStatHeader is docker cp's header: the base64 JSON of the PathStat.
const pathStatHeader = "X-Docker-Container-Path-Stat"

func setPathStat(w http.ResponseWriter, st container.PathStat) error {
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	w.Header().Set(pathStatHeader, base64.StdEncoding.EncodeToString(b))
	return nil
}

func archivePath(req *http.Request) (string, error) {
	if err := apiserver.ParseForm(req); err != nil {
		return "", err
	}
	p := req.Form.Get("path")
	if p == "" {
		return "", invalid("path is required")
	}
	return p, nil
}

func (r *router) statPath(ctx context.Context, w http.ResponseWriter, req *http.Request, vars map[string]string) error {
	p, err := archivePath(req)
	if err != nil {
		return err
	}
	st, err := r.b.StatPath(ctx, vars["name"], p)
	if err != nil {
		return err
	}
	if err := setPathStat(w, st); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

func (r *router) archive(ctx context.Context, w http.ResponseWriter, req *http.Request, vars map[string]string) error {
	p, err := archivePath(req)
	if err != nil {
		return err
	}
	rc, st, err := r.b.ArchivePath(ctx, vars["name"], p)
	if err != nil {
		return err
	}
	defer rc.Close()
	if err := setPathStat(w, st); err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/x-tar")
	w.WriteHeader(http.StatusOK)
	_, _ = io.Copy(w, rc)
	return nil
}

func (r *router) extract(ctx context.Context, w http.ResponseWriter, req *http.Request, vars map[string]string) error {
	p, err := archivePath(req)
	if err != nil {
		return err
	}
	err = r.b.ExtractToDir(ctx, vars["name"], p, apiserver.BoolValue(req, "noOverwriteDirNonDir"), apiserver.BoolValue(req, "copyUIDGID"), req.Body)
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

func (r *router) prune(ctx context.Context, w http.ResponseWriter, req *http.Request, _ map[string]string) error {
	if err := apiserver.ParseForm(req); err != nil {
		return err
	}
	f, err := apiserver.Filters(req)
	if err != nil {
		return err
	}
	report, err := r.b.Prune(ctx, daemon.PruneOptions{Filters: f})
	if err != nil {
		return err
	}
	return apiserver.WriteJSON(w, http.StatusOK, report)
}
