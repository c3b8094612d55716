package apiserver

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/julienschmidt/httprouter"
	"go.uber.org/fx"
)

// This file compiles the Docker-form route table onto httprouter
// (DESIGN §4). httprouter panics when a static segment and a parameter
// share a position (/containers/json beside /containers/:name/json,
// julienschmidt/httprouter#183), and Docker's parameters may contain
// slashes (/images/127.0.0.1:5000/team/app:1/json; dockerd declares them
// {name:.*}). So httprouter only dispatches on the method and the first
// path segment, which is static in every Docker route — "/<first>" and
// "/<first>/*rest" — and the rest of the path is matched against that
// segment's routes here: static segments match exactly and win over
// parameters; a parameter takes one or more whole segments, slashes
// included, so that the static segments after it still match.

// Router is the compiled route table: an http.Handler-free lookup from
// method and unversioned path to a route's handler and path parameters.
type Router struct {
	hr     *httprouter.Router
	routes []Route
}

// compiled is one route as the matcher sees it.
type compiled struct {
	route Route
	segs  []segment // after the first segment
	score int       // static segments: more is more specific
	order int       // declaration order, the last tie-break
}

// segment is one path segment of a route: static text, or a parameter.
type segment struct {
	text  string
	param bool
}

// family is the routes of one method under one first segment.
type family struct {
	routes []compiled
}

// CompileRoutes compiles the routes onto a Router. It returns an error
// naming the route when a path is not in Docker's form (it must start
// with a static segment; parameters are whole segments "{name}"), a
// method is not one of GET, HEAD, POST, PUT, DELETE, a handler is nil, or
// two routes have the same method and path.
func CompileRoutes(routes []Route) (*Router, error) {
	hr := httprouter.New()
	// dockerd answers an unknown path, a wrong method or a stray trailing
	// slash with 404, never a redirect or 405.
	hr.RedirectTrailingSlash = false
	hr.RedirectFixedPath = false
	hr.HandleMethodNotAllowed = false
	hr.HandleOPTIONS = false

	families := map[string]*family{} // "METHOD /first"
	seen := map[string]bool{}
	var errs []error
	for i, rt := range routes {
		first, segs, err := parsePath(rt.Path)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("route %s %s: %w", rt.Method, rt.Path, err))
			continue
		case !validMethod(rt.Method):
			errs = append(errs, fmt.Errorf("route %s %s: unsupported method", rt.Method, rt.Path))
			continue
		case rt.Handler == nil:
			errs = append(errs, fmt.Errorf("route %s %s: nil handler", rt.Method, rt.Path))
			continue
		}
		key := rt.Method + " " + shape(first, segs)
		if seen[key] {
			errs = append(errs, fmt.Errorf("route %s %s declared twice", rt.Method, rt.Path))
			continue
		}
		seen[key] = true
		c := compiled{route: rt, segs: segs, order: i}
		for _, s := range segs {
			if !s.param {
				c.score++
			}
		}
		fk := rt.Method + " /" + first
		f := families[fk]
		if f == nil {
			f = &family{}
			families[fk] = f
			h := f.handle
			hr.Handle(rt.Method, "/"+first, h)
			hr.Handle(rt.Method, "/"+first+"/*rest", h)
		}
		f.routes = append(f.routes, c)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	for _, f := range families {
		slices.SortStableFunc(f.routes, func(a, b compiled) int {
			if a.score != b.score {
				return b.score - a.score
			}
			return a.order - b.order
		})
	}
	return &Router{hr: hr, routes: routes}, nil
}

// wrapped returns the router with every handler wrapped once, so that a
// request does not rebuild the middleware chain.
func (rt *Router) wrapped(wrap func(HandlerFunc) HandlerFunc) *Router {
	routes := make([]Route, len(rt.routes))
	for i, r := range rt.routes {
		r.Handler = wrap(r.Handler)
		routes[i] = r
	}
	w, err := CompileRoutes(routes)
	if err != nil {
		// The same table compiled before; only the handlers differ.
		panic(fmt.Sprintf("recompile routes: %v", err))
	}
	return w
}

// routeMatch carries a lookup's result out of httprouter's handler.
type routeMatch struct {
	handler HandlerFunc
	vars    map[string]string
}

// handle is the httprouter handle of a family; it finds the route for
// the rest of the path and stores it in the routeMatch writer.
func (f *family) handle(w http.ResponseWriter, _ *http.Request, ps httprouter.Params) {
	m, ok := w.(*matchWriter)
	if !ok {
		return
	}
	rest := strings.TrimPrefix(ps.ByName("rest"), "/")
	var parts []string
	if ps.ByName("rest") != "" {
		parts = strings.Split(rest, "/")
	}
	for _, c := range f.routes {
		if vars, ok := match(c.segs, parts); ok {
			m.found = routeMatch{handler: c.route.Handler, vars: vars}
			return
		}
	}
}

// matchWriter is the http.ResponseWriter Lookup hands httprouter: only a
// place for the family handle to leave its result.
type matchWriter struct {
	http.ResponseWriter
	found routeMatch
}

// Lookup returns the handler and path parameters of the route for method
// and the unversioned path, or ok false when no route matches (dockerd's
// 404 "page not found").
func (rt *Router) Lookup(method, path string) (h HandlerFunc, vars map[string]string, ok bool) {
	handle, ps, _ := rt.hr.Lookup(method, path)
	if handle == nil {
		return nil, nil, false
	}
	mw := &matchWriter{}
	handle(mw, nil, ps)
	if mw.found.handler == nil {
		return nil, nil, false
	}
	return mw.found.handler, mw.found.vars, true
}

// match matches path segments against a route's segments (after the
// first), returning the parameters. A parameter takes one or more
// segments, as few as let the rest match; its value may not be empty.
func match(segs []segment, parts []string) (map[string]string, bool) {
	if len(segs) == 0 {
		if len(parts) == 0 {
			return map[string]string{}, true
		}
		return nil, false
	}
	s := segs[0]
	if !s.param {
		if len(parts) == 0 || parts[0] != s.text {
			return nil, false
		}
		return match(segs[1:], parts[1:])
	}
	// The parameter takes parts[:n]; the remaining route segments need
	// at least one part each.
	for n := 1; n <= len(parts)-(len(segs)-1); n++ {
		vars, ok := match(segs[1:], parts[n:])
		if !ok {
			continue
		}
		v := strings.Join(parts[:n], "/")
		if v == "" {
			return nil, false
		}
		vars[s.text] = v
		return vars, true
	}
	return nil, false
}

// parsePath splits a Docker-form path into its first segment (static)
// and the segments after it.
func parsePath(p string) (first string, segs []segment, err error) {
	if !strings.HasPrefix(p, "/") || p == "/" {
		return "", nil, errors.New("path must start with / and a static segment")
	}
	parts := strings.Split(p[1:], "/")
	for i, part := range parts {
		var s segment
		switch {
		case part == "":
			return "", nil, errors.New("empty path segment")
		case strings.HasPrefix(part, "{") && strings.HasSuffix(part, "}") && len(part) > 2:
			s = segment{text: part[1 : len(part)-1], param: true}
			if strings.ContainsAny(s.text, "{}:*") {
				return "", nil, fmt.Errorf("bad parameter %q", part)
			}
		case strings.ContainsAny(part, "{}:*"):
			return "", nil, fmt.Errorf("segment %q: parameters are whole segments, {name}", part)
		default:
			s = segment{text: part}
		}
		if i == 0 {
			if s.param {
				return "", nil, errors.New("the first segment must be static")
			}
			first = s.text
			continue
		}
		segs = append(segs, s)
	}
	return first, segs, nil
}

// shape renders a route's path with its parameters unnamed, so that
// /containers/{id}/json and /containers/{name}/json are the same route.
func shape(first string, segs []segment) string {
	var b strings.Builder
	b.WriteString("/" + first)
	for _, s := range segs {
		if s.param {
			b.WriteString("/{}")
		} else {
			b.WriteString("/" + s.text)
		}
	}
	return b.String()
}

func validMethod(m string) bool {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodDelete:
		return true
	}
	return false
}

// RoutesParams is the input of stage 5 routes: the "routes" value group
// every router stage contributes to.
type RoutesParams struct {
	fx.In

	Routes []Route `group:"routes"`
}

// NewRoutes is stage 5 routes: it compiles every router's routes
// (CompileRoutes); a malformed or duplicate route fails the boot, naming
// it.
func NewRoutes(p RoutesParams) (*Router, error) {
	return CompileRoutes(p.Routes)
}
