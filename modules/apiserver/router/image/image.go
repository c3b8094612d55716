package image

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/containerd/errdefs"
	"github.com/distribution/reference"
	"github.com/moby/moby/api/types/image"
	"github.com/moby/moby/api/types/jsonstream"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"go.uber.org/fx"

	"github.com/wharfd/wharfd/modules/apiserver"
	"github.com/wharfd/wharfd/modules/apiserver/router/system"
	"github.com/wharfd/wharfd/modules/storage"
)

// Backend is what the image routes use of the image service.
type Backend interface {
	// List returns the images matching the options, newest first.
	List(ctx context.Context, opts storage.ListOptions) ([]image.Summary, error)
	// Inspect returns one image.
	Inspect(ctx context.Context, name string) (*image.InspectResponse, error)
	// History returns an image's history, newest first.
	History(ctx context.Context, name string) ([]image.HistoryResponseItem, error)
	// Import makes an image of a root filesystem tar and returns its ID.
	Import(ctx context.Context, r io.Reader, opts storage.ImportOptions) (string, error)
	// Load stores the images of a docker-archive or OCI archive.
	Load(ctx context.Context, r io.Reader, quiet bool, progress storage.ProgressFunc) error
	// Save writes the named images to w as one docker-archive.
	Save(ctx context.Context, names []string, w io.Writer) error
	// Tag points ref at the image name resolves to.
	Tag(ctx context.Context, name string, ref reference.Named) error
	// Delete untags or deletes an image.
	Delete(ctx context.Context, name string, force, prune bool) ([]image.DeleteResponse, error)
	// Prune deletes unused images.
	Prune(ctx context.Context, filters storage.Filters) (*image.PruneReport, error)
}

var _ Backend = (*storage.Images)(nil)

// Result is what stage 5 image provides: the routes, the image count and
// storage driver of GET /info, and the images' share of GET /system/df.
type Result struct {
	fx.Out

	Routes    []apiserver.Route `group:"routes,flatten"`
	Images    system.Images
	Storage   system.Storage
	DiskUsage system.DiskUsage `group:"diskusage"`
}

// Params are the inputs of stage 5 image.
type Params struct {
	fx.In

	Images *storage.Images
	// Pull, from the image-distribution stage, serves the fromImage
	// branch of POST /images/create; without it pulls answer 501.
	Pull PullHandler `optional:"true"`
	// Users, from the container stage, says which containers use an
	// image and whether one runs, for DELETE /images/{name}'s conflicts;
	// without it every container of the store counts as stopped.
	Users ContainerUsers `optional:"true"`
}

// ContainerUsers is what the image routes ask the container engine
// (modules/daemon's ImageInUse): the containers that use the image with
// ID imageID ("sha256:<hex>"), running ones first, and whether one of
// them runs. The container stage provides it; declaring it here keeps
// the image stage ordered before nothing of the daemon's.
type ContainerUsers interface {
	ImageInUse(imageID string) (containerIDs []string, running bool)
}

// New is stage 5 image: the image routes over the image service.
func New(p Params) Result {
	f := facts{p.Images}
	var b Backend = p.Images
	if p.Users != nil {
		b = usersAware{Images: p.Images, users: p.Users}
	}
	return Result{Routes: Routes(b, p.Pull), Images: f, Storage: f, DiskUsage: f}
}

// usersAware is the image service whose Delete knows which containers
// run: dockerd's "(cannot be forced) - image is being used by running
// container" and "(must be forced) - … by stopped container".
type usersAware struct {
	*storage.Images
	users ContainerUsers
}

// Delete is storage.Images.DeleteUsedBy with the container engine's view.
func (u usersAware) Delete(ctx context.Context, name string, force, prune bool) ([]image.DeleteResponse, error) {
	return u.Images.DeleteUsedBy(ctx, name, force, prune, u.users)
}

// Routes returns the image routes over b.
func Routes(b Backend, pull PullHandler) []apiserver.Route {
	r := &router{b: b, pull: pull}
	return []apiserver.Route{
		{Method: http.MethodGet, Path: "/images/json", Handler: r.list},
		{Method: http.MethodGet, Path: "/images/get", Handler: r.save},
		{Method: http.MethodGet, Path: "/images/{name}/get", Handler: r.save},
		{Method: http.MethodGet, Path: "/images/{name}/json", Handler: r.inspect},
		{Method: http.MethodGet, Path: "/images/{name}/history", Handler: r.history},
		{Method: http.MethodPost, Path: "/images/create", Handler: r.create},
		{Method: http.MethodPost, Path: "/images/load", Handler: r.load},
		{Method: http.MethodPost, Path: "/images/prune", Handler: r.prune},
		{Method: http.MethodPost, Path: "/images/{name}/tag", Handler: r.tag},
		{Method: http.MethodDelete, Path: "/images/{name}", Handler: r.remove},
	}
}

type router struct {
	b    Backend
	pull PullHandler // nil: pulls answer 501
}

// list is GET /images/json: all, filters (dangling, label, before, since,
// until, reference).
func (r *router) list(ctx context.Context, w http.ResponseWriter, req *http.Request, _ map[string]string) error {
	if err := apiserver.ParseForm(req); err != nil {
		return err
	}
	filters, err := apiserver.Filters(req)
	if err != nil {
		return err
	}
	imgs, err := r.b.List(ctx, storage.ListOptions{All: apiserver.BoolValue(req, "all"), Filters: filters})
	if err != nil {
		return err
	}
	return apiserver.WriteJSON(w, http.StatusOK, imgs)
}

// inspect is GET /images/{name}/json.
func (r *router) inspect(ctx context.Context, w http.ResponseWriter, _ *http.Request, vars map[string]string) error {
	resp, err := r.b.Inspect(ctx, vars["name"])
	if err != nil {
		return err
	}
	return apiserver.WriteJSON(w, http.StatusOK, resp)
}

// history is GET /images/{name}/history.
func (r *router) history(ctx context.Context, w http.ResponseWriter, _ *http.Request, vars map[string]string) error {
	h, err := r.b.History(ctx, vars["name"])
	if err != nil {
		return err
	}
	return apiserver.WriteJSON(w, http.StatusOK, h)
}

// create is POST /images/create. With fromSrc=- it imports the request
// body (repo, tag, message, changes, platform) and streams
// {"status":"sha256:…"}, as dockerd; pulls (fromImage) go to the
// distribution module's PullHandler, and importing from a URL would reach
// outside.
func (r *router) create(ctx context.Context, w http.ResponseWriter, req *http.Request, vars map[string]string) error {
	if err := apiserver.ParseForm(req); err != nil {
		return err
	}
	if req.Form.Get("fromImage") != "" {
		if r.pull == nil {
			return errdefs.ErrNotImplemented.WithMessage("pulling images is not supported by this daemon")
		}
		return r.pull(ctx, w, req, vars)
	}
	src := req.Form.Get("fromSrc")
	if src != "-" {
		return errdefs.ErrNotImplemented.WithMessage(fmt.Sprintf("importing from %q is not supported: send the archive as the request body (fromSrc=-)", src))
	}
	ref, err := repoTagReference(req.Form.Get("repo"), req.Form.Get("tag"))
	if err != nil {
		return err
	}
	platform, err := parsePlatform(req.Form.Get("platform"))
	if err != nil {
		return err
	}
	msg := req.Form.Get("message")
	if msg == "" {
		msg = "Imported from " + src
	}
	stream := apiserver.NewJSONStream(w)
	id, err := r.b.Import(ctx, req.Body, storage.ImportOptions{Ref: ref, Message: msg, Changes: req.Form["changes"], Platform: platform})
	if err != nil {
		return stream.Error(err)
	}
	return stream.Status("", id)
}

// load is POST /images/load: quiet (default true, as dockerd) streams only
// the "Loaded image" lines, else layer progress too.
func (r *router) load(ctx context.Context, w http.ResponseWriter, req *http.Request, _ map[string]string) error {
	if err := apiserver.ParseForm(req); err != nil {
		return err
	}
	quiet := apiserver.BoolValueOrDefault(req, "quiet", true)
	stream := apiserver.NewJSONStream(w)
	err := r.b.Load(ctx, req.Body, quiet, func(p storage.Progress) {
		if p.Message != "" {
			stream.Send(jsonstream.Message{Stream: p.Message}) //nolint:errcheck // a gone client fails the load's own writes
			return
		}
		stream.Progress(p.ID, p.Action, p.Current, p.Total) //nolint:errcheck // as above
	})
	if err != nil {
		return stream.Error(err)
	}
	return nil
}

// save is GET /images/get?names=… and GET /images/{name}/get: a
// docker-archive, Content-Type application/x-tar. An unknown name is a
// 404 before any byte of the archive.
func (r *router) save(ctx context.Context, w http.ResponseWriter, req *http.Request, vars map[string]string) error {
	if err := apiserver.ParseForm(req); err != nil {
		return err
	}
	names := req.Form["names"]
	if name, ok := vars["name"]; ok {
		names = []string{name}
	}
	lw := &lazyWriter{w: w}
	if err := r.b.Save(ctx, names, lw); err != nil {
		if !lw.started {
			return err
		}
		// The tar is already going: cut the connection, so the client
		// sees a broken transfer rather than a short archive.
		panic(http.ErrAbortHandler)
	}
	return nil
}

// lazyWriter sends the tar header and status with the first byte.
type lazyWriter struct {
	w       http.ResponseWriter
	started bool
}

func (l *lazyWriter) Write(p []byte) (int, error) {
	if !l.started {
		l.started = true
		l.w.Header().Set("Content-Type", "application/x-tar")
		l.w.WriteHeader(http.StatusOK)
	}
	return l.w.Write(p)
}

// tag is POST /images/{name}/tag?repo=…&tag=…: 201 Created.
func (r *router) tag(ctx context.Context, w http.ResponseWriter, req *http.Request, vars map[string]string) error {
	if err := apiserver.ParseForm(req); err != nil {
		return err
	}
	ref, err := repoTagReference(req.Form.Get("repo"), req.Form.Get("tag"))
	if err != nil {
		return err
	}
	if ref == nil {
		return errdefs.ErrInvalidArgument.WithMessage("repository name must have at least one component")
	}
	if err := r.b.Tag(ctx, vars["name"], ref); err != nil {
		return err
	}
	w.WriteHeader(http.StatusCreated)
	return nil
}

// remove is DELETE /images/{name}?force=…&noprune=….
func (r *router) remove(ctx context.Context, w http.ResponseWriter, req *http.Request, vars map[string]string) error {
	if err := apiserver.ParseForm(req); err != nil {
		return err
	}
	name := vars["name"]
	if strings.TrimSpace(name) == "" {
		return errdefs.ErrInvalidArgument.WithMessage("image name cannot be blank")
	}
	recs, err := r.b.Delete(ctx, name, apiserver.BoolValue(req, "force"), !apiserver.BoolValue(req, "noprune"))
	if err != nil {
		return err
	}
	return apiserver.WriteJSON(w, http.StatusOK, recs)
}

// prune is POST /images/prune?filters=….
func (r *router) prune(ctx context.Context, w http.ResponseWriter, req *http.Request, _ map[string]string) error {
	if err := apiserver.ParseForm(req); err != nil {
		return err
	}
	filters, err := apiserver.Filters(req)
	if err != nil {
		return err
	}
	rep, err := r.b.Prune(ctx, filters)
	if err != nil {
		return err
	}
	return apiserver.WriteJSON(w, http.StatusOK, rep)
}

// repoTagReference is dockerd's: no repo is no reference; a repo with a
// digest cannot be tagged; the tag defaults to latest. Errors are
// InvalidArgument with distribution/reference's wording ("invalid
// reference format").
func repoTagReference(repo, tag string) (reference.Named, error) {
	if repo == "" {
		return nil, nil
	}
	ref, err := storage.ParseNamed(repo)
	if err != nil {
		return nil, err
	}
	if _, ok := ref.(reference.Digested); ok {
		return nil, errdefs.ErrInvalidArgument.WithMessage("refusing to create a tag with a digest reference")
	}
	if tag == "" {
		return reference.TagNameOnly(ref), nil
	}
	tagged, err := reference.WithTag(ref, tag)
	if err != nil {
		return nil, errdefs.ErrInvalidArgument.WithMessage(err.Error())
	}
	return tagged, nil
}

// parsePlatform parses "os[/arch[/variant]]"; "" is nil.
func parsePlatform(s string) (*ocispec.Platform, error) {
	if s == "" {
		return nil, nil
	}
	parts := strings.Split(strings.ToLower(s), "/")
	if len(parts) > 3 || parts[0] == "" {
		return nil, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("%q: unknown operating system or architecture: invalid argument", s))
	}
	p := &ocispec.Platform{OS: parts[0]}
	if len(parts) > 1 {
		p.Architecture = parts[1]
	}
	if len(parts) > 2 {
		p.Variant = parts[2]
	}
	return p, nil
}

// facts gives /info and /system/df their image parts.
type facts struct{ s *storage.Images }

// ImageCount returns the number of images, for /info.
func (f facts) ImageCount() int {
	imgs, err := f.s.DB().List(context.Background())
	if err != nil {
		return 0
	}
	return len(imgs)
}

// DriverStatus returns the graph driver and its status lines, for /info.
func (f facts) DriverStatus() (string, [][2]string) {
	st := f.s.DB().Store()
	status, err := st.Status()
	if err != nil {
		status = nil
	}
	return st.DriverName(), status
}

// DiskUsage returns the images' share of /system/df: every image, its
// size, and what deleting the unused ones would free.
func (f facts) DiskUsage(ctx context.Context, verbose bool) (system.Usage, error) {
	imgs, err := f.s.List(ctx, storage.ListOptions{})
	if err != nil {
		return system.Usage{}, err
	}
	du := &image.DiskUsage{TotalCount: int64(len(imgs))}
	for _, img := range imgs {
		du.TotalSize += img.Size
		if img.Containers > 0 {
			du.ActiveCount++
		} else {
			du.Reclaimable += img.Size
		}
	}
	if verbose {
		du.Items = imgs
	}
	return system.Usage{Images: du}, nil
}

var (
	_ system.Images    = facts{}
	_ system.Storage   = facts{}
	_ system.DiskUsage = facts{}
)
