package image

import (
	"context"
	"net/http"
	"strings"

	"github.com/containerd/errdefs"
	"github.com/distribution/reference"
	"github.com/moby/moby/api/types/jsonstream"
	"github.com/opencontainers/go-digest"
	"go.uber.org/fx"

	"github.com/wharfd/wharfd/modules/apiserver"
	"github.com/wharfd/wharfd/modules/distribution"
	"github.com/wharfd/wharfd/modules/registry"
	"github.com/wharfd/wharfd/modules/storage"
	"github.com/wharfd/wharfd/pipeline"
)

// This file holds the registry side of the image routes: pulls (POST
// /images/create?fromImage=…) and pushes (POST /images/{name}/push), over
// modules/distribution.

// DistributionModule declares the stage of the pull and push routes.
var DistributionModule = pipeline.Module("image-distribution",
	pipeline.Stage{Step: "5", Name: "image-distribution", Doc: "routes POST /images/{name}/push and the fromImage (pull) branch of POST /images/create", Ctor: NewDistributionRoutes},
)

// Distribution is what the pull and push routes use of the distribution
// service.
type Distribution interface {
	// Pull pulls an image into the store, reporting progress.
	Pull(ctx context.Context, o distribution.PullOptions) error
	// Push pushes an image's tags, reporting progress.
	Push(ctx context.Context, o distribution.PushOptions) error
}

var _ Distribution = (*distribution.Service)(nil)

// PullHandler serves POST /images/create when fromImage is set. The
// create route (which also serves fromSrc imports on the same path)
// calls it: it is the hook through which pulls reach that route.
type PullHandler apiserver.HandlerFunc

// DistributionResult is what the image-distribution stage provides: the
// push route and the pull hook.
type DistributionResult struct {
	fx.Out
	Routes []apiserver.Route `group:"routes,flatten"`
	Pull   PullHandler
}

// NewDistributionRoutes is the image-distribution stage.
func NewDistributionRoutes(d *distribution.Service) DistributionResult {
	r := &distRouter{d: d}
	return DistributionResult{Routes: r.routes(), Pull: r.pull}
}

// DistributionRoutes returns the push route and the pull handler over d,
// for tests.
func DistributionRoutes(d Distribution) ([]apiserver.Route, PullHandler) {
	r := &distRouter{d: d}
	return r.routes(), r.pull
}

type distRouter struct{ d Distribution }

func (r *distRouter) routes() []apiserver.Route {
	return []apiserver.Route{{Method: http.MethodPost, Path: "/images/{name}/push", Handler: r.push}}
}

// pull is POST /images/create?fromImage=…&tag=…&platform=…: fromImage
// may carry a tag or digest; tag, when given, is a tag or a digest, as
// dockerd reads them. The X-Registry-Auth header carries credentials.
// Progress is streamed; errors before it starts are HTTP errors.
func (r *distRouter) pull(ctx context.Context, w http.ResponseWriter, req *http.Request, _ map[string]string) error {
	if err := apiserver.ParseForm(req); err != nil {
		return err
	}
	ref, err := pullReference(req.Form.Get("fromImage"), req.Form.Get("tag"))
	if err != nil {
		return err
	}
	platform, err := parsePlatform(req.Form.Get("platform"))
	if err != nil {
		return err
	}
	auth, err := registry.DecodeAuthConfig(req.Header.Get(registry.AuthHeader))
	if err != nil {
		return err
	}
	stream := apiserver.NewJSONStream(w)
	err = r.d.Pull(ctx, distribution.PullOptions{Ref: ref, Platform: platform, Auth: auth, Progress: func(m jsonstream.Message) {
		stream.Send(m) //nolint:errcheck // a gone client cancels the request's context
	}})
	if err != nil {
		return stream.Error(err)
	}
	return nil
}

// push is POST /images/{name}/push?tag=…: no tag pushes every tag of the
// repository, as dockerd.
func (r *distRouter) push(ctx context.Context, w http.ResponseWriter, req *http.Request, vars map[string]string) error {
	if err := apiserver.ParseForm(req); err != nil {
		return err
	}
	ref, err := storage.ParseNamed(vars["name"])
	if err != nil {
		return err
	}
	if tag := req.Form.Get("tag"); tag != "" {
		if ref, err = reference.WithTag(reference.TrimNamed(ref), tag); err != nil {
			return errdefs.ErrInvalidArgument.WithMessage(err.Error())
		}
	}
	auth, err := registry.DecodeAuthConfig(req.Header.Get(registry.AuthHeader))
	if err != nil {
		return err
	}
	stream := apiserver.NewJSONStream(w)
	err = r.d.Push(ctx, distribution.PushOptions{Ref: ref, Auth: auth, Progress: func(m jsonstream.Message) {
		stream.Send(m) //nolint:errcheck // a gone client cancels the request's context
	}})
	if err != nil {
		return stream.Error(err)
	}
	return nil
}

// pullReference is dockerd's reading of fromImage and tag: the image
// normalised ("busybox" is docker.io/library/busybox); a tag that parses
// as a digest makes a digest reference, else a tag; no tag at all is
// latest unless fromImage has a tag or digest. Errors are InvalidArgument
// ("invalid reference format…").
func pullReference(image, tag string) (reference.Named, error) {
	if strings.TrimSpace(image) == "" {
		return nil, errdefs.ErrInvalidArgument.WithMessage("image name cannot be blank")
	}
	ref, err := storage.ParseNamed(image)
	if err != nil {
		return nil, err
	}
	if tag != "" {
		if d, derr := digest.Parse(tag); derr == nil {
			ref, err = reference.WithDigest(reference.TrimNamed(ref), d)
		} else {
			ref, err = reference.WithTag(reference.TrimNamed(ref), tag)
		}
		if err != nil {
			return nil, errdefs.ErrInvalidArgument.WithMessage(err.Error())
		}
	}
	return reference.TagNameOnly(ref), nil
}
