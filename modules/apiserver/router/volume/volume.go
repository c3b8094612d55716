package volume

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/volume"
	"go.uber.org/fx"

	"github.com/wharfd/wharfd/modules/apiserver"
	"github.com/wharfd/wharfd/modules/apiserver/router/system"
	"github.com/wharfd/wharfd/modules/volumes"
)

// Backend is what the volume routes use of the volume service.
type Backend interface {
	// List returns the volumes matching the filters, and warnings.
	List(ctx context.Context, filters volumes.Filters) ([]volume.Volume, []string, error)
	// Get returns one volume.
	Get(ctx context.Context, name string) (volume.Volume, error)
	// Create creates a volume, or returns the existing one of that name.
	Create(ctx context.Context, o volumes.CreateOptions) (volume.Volume, bool, error)
	// Remove removes a volume; force ignores a missing one.
	Remove(ctx context.Context, name string, force bool) error
	// Prune removes the unused volumes matching the filters.
	Prune(ctx context.Context, filters volumes.Filters) (volume.PruneReport, error)
}

var _ Backend = (*volumes.Service)(nil)

// clusterVolumesVersion is the API version that brought swarm cluster
// volumes (and anonymous-only prune).
const clusterVolumesVersion = "1.42"

// errNotSwarmManager is dockerd's answer to a cluster-volume request on a
// node that is no swarm manager (503); this daemon never is one.
var errNotSwarmManager = errdefs.ErrUnavailable.WithMessage(`This node is not a swarm manager. Use "docker swarm init" or "docker swarm join" to connect this node to swarm and try again.`)

// Result is what stage 5 volume provides: the routes, the volumes' share
// of GET /system/df and the volume drivers of GET /info.
type Result struct {
	fx.Out

	Routes    []apiserver.Route `group:"routes,flatten"`
	DiskUsage system.DiskUsage  `group:"diskusage"`
	Plugins   system.PluginSet  `group:"plugins"`
}

// New is stage 5 volume: the volume routes over the volume service.
func New(s *volumes.Service) Result {
	return Result{
		Routes:    Routes(s),
		DiskUsage: diskUsage{s},
		Plugins:   system.PluginSet{Kind: "Volume", Names: []string{volumes.DriverName}},
	}
}

// Routes returns the volume routes over b.
func Routes(b Backend) []apiserver.Route {
	r := &router{b: b}
	return []apiserver.Route{
		{Method: http.MethodGet, Path: "/volumes", Handler: r.list},
		{Method: http.MethodGet, Path: "/volumes/{name}", Handler: r.inspect},
		{Method: http.MethodPost, Path: "/volumes/create", Handler: r.create},
		{Method: http.MethodPost, Path: "/volumes/prune", Handler: r.prune},
		{Method: http.MethodPut, Path: "/volumes/{name}", Handler: r.update},
		{Method: http.MethodDelete, Path: "/volumes/{name}", Handler: r.remove},
	}
}

type router struct{ b Backend }

// list is GET /volumes: {"Volumes": [...], "Warnings": null}. A filters
// value that does not decode is 400 "error reading volume filters: …".
func (r *router) list(ctx context.Context, w http.ResponseWriter, req *http.Request, _ map[string]string) error {
	if err := apiserver.ParseForm(req); err != nil {
		return err
	}
	f, err := apiserver.Filters(req)
	if err != nil {
		return fmt.Errorf("error reading volume filters: %w", err)
	}
	vols, warnings, err := r.b.List(ctx, f)
	if err != nil {
		return err
	}
	return apiserver.WriteJSON(w, http.StatusOK, volume.ListResponse{Volumes: vols, Warnings: warnings})
}

// inspect is GET /volumes/{name}.
func (r *router) inspect(ctx context.Context, w http.ResponseWriter, req *http.Request, vars map[string]string) error {
	if err := apiserver.ParseForm(req); err != nil {
		return err
	}
	v, err := r.b.Get(ctx, vars["name"])
	if err != nil {
		return err
	}
	return apiserver.WriteJSON(w, http.StatusOK, v)
}

// create is POST /volumes/create: 201 with the volume. An empty body
// creates an anonymous volume. A ClusterVolumeSpec (API 1.42+) asks for a
// swarm volume: 503, as dockerd off a swarm manager.
func (r *router) create(ctx context.Context, w http.ResponseWriter, req *http.Request, _ map[string]string) error {
	if err := apiserver.ParseForm(req); err != nil {
		return err
	}
	var body volume.CreateRequest
	if err := apiserver.ReadJSON(req, &body); err != nil {
		return err
	}
	if body.ClusterVolumeSpec != nil && !apiserver.VersionLess(apiserver.APIVersion(ctx), clusterVolumesVersion) {
		return errNotSwarmManager
	}
	v, _, err := r.b.Create(ctx, volumes.CreateOptions{
		Name: body.Name, Driver: body.Driver, DriverOpts: body.DriverOpts, Labels: body.Labels,
	})
	if err != nil {
		return err
	}
	return apiserver.WriteJSON(w, http.StatusCreated, v)
}

// remove is DELETE /volumes/{name}?force=: 204. force only silences a
// missing volume; one in use is 409 either way.
func (r *router) remove(ctx context.Context, w http.ResponseWriter, req *http.Request, vars map[string]string) error {
	if err := apiserver.ParseForm(req); err != nil {
		return err
	}
	if err := r.b.Remove(ctx, vars["name"], apiserver.BoolValue(req, "force")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// prune is POST /volumes/prune: the prune report. Before API 1.42 every
// unused volume is a candidate, not only anonymous ones, as dockerd.
func (r *router) prune(ctx context.Context, w http.ResponseWriter, req *http.Request, _ map[string]string) error {
	if err := apiserver.ParseForm(req); err != nil {
		return err
	}
	f, err := apiserver.Filters(req)
	if err != nil {
		return err
	}
	if apiserver.VersionLess(apiserver.APIVersion(ctx), clusterVolumesVersion) {
		if f == nil {
			f = map[string][]string{}
		}
		f["all"] = []string{"true"}
	}
	rep, err := r.b.Prune(ctx, f)
	if err != nil {
		return err
	}
	return apiserver.WriteJSON(w, http.StatusOK, rep)
}

// update is PUT /volumes/{name}: cluster volumes only, and this daemon is
// no swarm manager: 503, dockerd's text; before API 1.42 the route does
// not exist (400, as dockerd's minimum-version routes).
func (r *router) update(ctx context.Context, _ http.ResponseWriter, _ *http.Request, _ map[string]string) error {
	if v := apiserver.APIVersion(ctx); v != "" && apiserver.VersionLess(v, clusterVolumesVersion) {
		return invalidParam{errors.New("PUT /volumes/{name:.*} requires minimum API version " + clusterVolumesVersion)}
	}
	return errdefs.ErrUnavailable.WithMessage("volume update only valid for cluster volumes, but swarm is unavailable")
}

// invalidParam is an InvalidArgument (400) error with its cause's text.
type invalidParam struct{ error }

func (invalidParam) InvalidParameter() {}

// diskUsage is the volumes' share of GET /system/df.
type diskUsage struct{ s *volumes.Service }

// DiskUsage returns the volumes' usage; verbose lists them.
func (d diskUsage) DiskUsage(ctx context.Context, verbose bool) (system.Usage, error) {
	du, err := d.s.DiskUsage(ctx, verbose)
	if err != nil {
		return system.Usage{}, err
	}
	return system.Usage{Volumes: du}, nil
}
