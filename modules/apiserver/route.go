package apiserver

import (
	"context"
	"net/http"

	"go.uber.org/fx"
)

// HandlerFunc serves one API route. vars holds the route's path parameters
// by name ("name" for /containers/{name}/json). A handler that fails
// returns an error classified with github.com/containerd/errdefs; the
// server maps the class to the HTTP status and writes {"message": "..."}
// (a handler that already wrote its response returns nil).
type HandlerFunc func(ctx context.Context, w http.ResponseWriter, r *http.Request, vars map[string]string) error

// Route is one entry of the Docker Engine API route table, declared in
// Docker's own form: Path is the unversioned path with {param} segments,
// "/containers/{name}/json"; a parameter that may contain slashes (image
// names) is the route's last segment or followed only by static segments,
// as in "/images/{name}/json". The apiserver compiles all routes onto
// httprouter (DESIGN §4); the version middleware strips /vX.Y first.
type Route struct {
	// Method is the HTTP method: GET, HEAD, POST, PUT or DELETE.
	Method string
	// Path is the route in Docker's form, with {param} segments.
	Path string
	// Handler serves the route.
	Handler HandlerFunc
}

// Routes is what a router stage provides: its routes, contributed to the
// "routes" value group that the apiserver stage consumes.
//
//	func New(b Backend) apiserver.Routes {
//		return apiserver.Routes{Routes: []apiserver.Route{{Method: "GET", Path: "/images/json", Handler: r.list}}}
//	}
type Routes struct {
	fx.Out
	// Routes are the router's routes.
	Routes []Route `group:"routes,flatten"`
}
