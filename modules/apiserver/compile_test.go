package apiserver

import (
	"context"
	"net/http"
	"strings"
	"testing"
)

// dockerRoutes is the Engine API v1.56 route table (the paths and methods
// of the API definition), plus the routes dockerd serves beyond it.
var dockerRoutes = [][2]string{
	{"GET", "/containers/json"},
	{"POST", "/containers/create"},
	{"GET", "/containers/{id}/json"},
	{"GET", "/containers/{id}/top"},
	{"GET", "/containers/{id}/logs"},
	{"GET", "/containers/{id}/changes"},
	{"GET", "/containers/{id}/export"},
	{"GET", "/containers/{id}/stats"},
	{"POST", "/containers/{id}/resize"},
	{"POST", "/containers/{id}/start"},
	{"POST", "/containers/{id}/stop"},
	{"POST", "/containers/{id}/restart"},
	{"POST", "/containers/{id}/kill"},
	{"POST", "/containers/{id}/update"},
	{"POST", "/containers/{id}/rename"},
	{"POST", "/containers/{id}/pause"},
	{"POST", "/containers/{id}/unpause"},
	{"POST", "/containers/{id}/attach"},
	{"GET", "/containers/{id}/attach/ws"},
	{"POST", "/containers/{id}/wait"},
	{"DELETE", "/containers/{id}"},
	{"HEAD", "/containers/{id}/archive"},
	{"GET", "/containers/{id}/archive"},
	{"PUT", "/containers/{id}/archive"},
	{"POST", "/containers/prune"},
	{"GET", "/images/json"},
	{"POST", "/build"},
	{"POST", "/build/prune"},
	{"POST", "/images/create"},
	{"GET", "/images/{name}/json"},
	{"GET", "/images/{name}/attestations"},
	{"GET", "/images/{name}/history"},
	{"POST", "/images/{name}/push"},
	{"POST", "/images/{name}/tag"},
	{"DELETE", "/images/{name}"},
	{"GET", "/images/search"},
	{"POST", "/images/prune"},
	{"POST", "/auth"},
	{"GET", "/info"},
	{"GET", "/version"},
	{"GET", "/_ping"},
	{"HEAD", "/_ping"},
	{"POST", "/commit"},
	{"GET", "/events"},
	{"GET", "/system/df"},
	{"GET", "/images/{name}/get"},
	{"GET", "/images/get"},
	{"POST", "/images/load"},
	{"POST", "/containers/{id}/exec"},
	{"POST", "/exec/{id}/start"},
	{"POST", "/exec/{id}/resize"},
	{"GET", "/exec/{id}/json"},
	{"GET", "/volumes"},
	{"POST", "/volumes/create"},
	{"GET", "/volumes/{name}"},
	{"PUT", "/volumes/{name}"},
	{"DELETE", "/volumes/{name}"},
	{"POST", "/volumes/prune"},
	{"GET", "/networks"},
	{"GET", "/networks/{id}"},
	{"DELETE", "/networks/{id}"},
	{"POST", "/networks/create"},
	{"POST", "/networks/{id}/connect"},
	{"POST", "/networks/{id}/disconnect"},
	{"POST", "/networks/prune"},
	{"GET", "/plugins"},
	{"GET", "/plugins/privileges"},
	{"POST", "/plugins/pull"},
	{"GET", "/plugins/{name}/json"},
	{"DELETE", "/plugins/{name}"},
	{"POST", "/plugins/{name}/enable"},
	{"POST", "/plugins/{name}/disable"},
	{"POST", "/plugins/{name}/upgrade"},
	{"POST", "/plugins/create"},
	{"POST", "/plugins/{name}/push"},
	{"POST", "/plugins/{name}/set"},
	{"GET", "/nodes"},
	{"GET", "/nodes/{id}"},
	{"DELETE", "/nodes/{id}"},
	{"POST", "/nodes/{id}/update"},
	{"GET", "/swarm"},
	{"POST", "/swarm/init"},
	{"POST", "/swarm/join"},
	{"POST", "/swarm/leave"},
	{"POST", "/swarm/update"},
	{"GET", "/swarm/unlockkey"},
	{"POST", "/swarm/unlock"},
	{"GET", "/services"},
	{"POST", "/services/create"},
	{"GET", "/services/{id}"},
	{"DELETE", "/services/{id}"},
	{"POST", "/services/{id}/update"},
	{"GET", "/services/{id}/logs"},
	{"GET", "/tasks"},
	{"GET", "/tasks/{id}"},
	{"GET", "/tasks/{id}/logs"},
	{"GET", "/secrets"},
	{"POST", "/secrets/create"},
	{"GET", "/secrets/{id}"},
	{"DELETE", "/secrets/{id}"},
	{"POST", "/secrets/{id}/update"},
	{"GET", "/configs"},
	{"POST", "/configs/create"},
	{"GET", "/configs/{id}"},
	{"DELETE", "/configs/{id}"},
	{"POST", "/configs/{id}/update"},
	{"GET", "/distribution/{name}/json"},
	{"POST", "/session"},
	// dockerd routes not in the API definition.
	{"POST", "/build/cancel"},
	{"POST", "/grpc"},
}

// tableRouter compiles dockerRoutes, each handler naming its route.
func tableRouter(t *testing.T) *Router {
	t.Helper()
	var routes []Route
	for _, r := range dockerRoutes {
		id := r[0] + " " + r[1]
		routes = append(routes, Route{Method: r[0], Path: r[1], Handler: func(_ context.Context, w http.ResponseWriter, _ *http.Request, _ map[string]string) error {
			w.Header().Set("X-Route", id)
			return nil
		}})
	}
	rt, err := CompileRoutes(routes)
	if err != nil {
		t.Fatal(err)
	}
	return rt
}

// routeOf runs the handler Lookup found and returns the route it names.
func routeOf(t *testing.T, h HandlerFunc) string {
	t.Helper()
	w := &recordingWriter{header: http.Header{}}
	if err := h(context.Background(), w, nil, nil); err != nil {
		t.Fatal(err)
	}
	return w.header.Get("X-Route")
}

type recordingWriter struct {
	header http.Header
	status int
}

func (w *recordingWriter) Header() http.Header         { return w.header }
func (w *recordingWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *recordingWriter) WriteHeader(code int)        { w.status = code }

// TestCompileDockerTable routes a concrete path for every route of the
// table, with each parameter filled by a plain value, a value equal to
// a static sibling's segment, and an image name with slashes.
func TestCompileDockerTable(t *testing.T) {
	rt := tableRouter(t)
	values := []string{"abc", "json", "127.0.0.1:5000/team/app:1", "docker.io/library/busybox@sha256:0123"}
	for _, r := range dockerRoutes {
		for _, v := range values {
			path, want := fill(r[1], v)
			t.Run(r[0]+" "+path, func(t *testing.T) {
				h, vars, ok := rt.Lookup(r[0], path)
				if !ok {
					t.Fatalf("no route")
				}
				got := routeOf(t, h)
				if got != r[0]+" "+r[1] {
					// A value equal to a static sibling makes the path
					// that sibling's, by design (static wins).
					if v == "json" && staticSibling(r[0], path) {
						return
					}
					t.Fatalf("routed to %q, want %q", got, r[0]+" "+r[1])
				}
				for k, wv := range want {
					if vars[k] != wv {
						t.Errorf("vars[%s] = %q, want %q", k, vars[k], wv)
					}
				}
			})
		}
	}
}

// fill substitutes v for every {param} of path.
func fill(path, v string) (string, map[string]string) {
	want := map[string]string{}
	segs := strings.Split(path, "/")
	for i, s := range segs {
		if strings.HasPrefix(s, "{") {
			want[s[1:len(s)-1]] = v
			segs[i] = v
		}
	}
	return strings.Join(segs, "/"), want
}

// staticSibling reports whether the table has a route with no parameter
// at exactly method and path.
func staticSibling(method, path string) bool {
	for _, r := range dockerRoutes {
		if r[0] == method && r[1] == path {
			return true
		}
	}
	return false
}

func TestCompileLookup(t *testing.T) {
	rt := tableRouter(t)
	tests := []struct {
		name      string
		giveMeth  string
		givePath  string
		wantRoute string // "" for no route
		wantVars  map[string]string
	}{
		{name: "static beside parameter", giveMeth: "GET", givePath: "/containers/json", wantRoute: "GET /containers/json"},
		{name: "parameter beside static", giveMeth: "GET", givePath: "/containers/abc/json", wantRoute: "GET /containers/{id}/json", wantVars: map[string]string{"id": "abc"}},
		{name: "container named json", giveMeth: "GET", givePath: "/containers/json/json", wantRoute: "GET /containers/{id}/json", wantVars: map[string]string{"id": "json"}},
		{name: "image with registry and path", giveMeth: "GET", givePath: "/images/127.0.0.1:5000/team/app:1/json", wantRoute: "GET /images/{name}/json", wantVars: map[string]string{"name": "127.0.0.1:5000/team/app:1"}},
		{name: "image whose path ends in json", giveMeth: "GET", givePath: "/images/team/json/json", wantRoute: "GET /images/{name}/json", wantVars: map[string]string{"name": "team/json"}},
		{name: "image get static", giveMeth: "GET", givePath: "/images/get", wantRoute: "GET /images/get"},
		{name: "image get by name", giveMeth: "GET", givePath: "/images/busybox/get", wantRoute: "GET /images/{name}/get", wantVars: map[string]string{"name": "busybox"}},
		{name: "delete image with slashes", giveMeth: "DELETE", givePath: "/images/quay.io/a/b:c", wantRoute: "DELETE /images/{name}", wantVars: map[string]string{"name": "quay.io/a/b:c"}},
		{name: "tag image", giveMeth: "POST", givePath: "/images/a/b/tag", wantRoute: "POST /images/{name}/tag", wantVars: map[string]string{"name": "a/b"}},
		{name: "distribution", giveMeth: "GET", givePath: "/distribution/docker.io/library/busybox:latest/json", wantRoute: "GET /distribution/{name}/json", wantVars: map[string]string{"name": "docker.io/library/busybox:latest"}},
		{name: "attach ws", giveMeth: "GET", givePath: "/containers/c1/attach/ws", wantRoute: "GET /containers/{id}/attach/ws", wantVars: map[string]string{"id": "c1"}},
		{name: "single segment", giveMeth: "GET", givePath: "/_ping", wantRoute: "GET /_ping"},
		{name: "head ping", giveMeth: "HEAD", givePath: "/_ping", wantRoute: "HEAD /_ping"},
		{name: "first segment alone beside children", giveMeth: "POST", givePath: "/build", wantRoute: "POST /build"},
		{name: "child of single-segment route", giveMeth: "POST", givePath: "/build/prune", wantRoute: "POST /build/prune"},
		{name: "volumes list", giveMeth: "GET", givePath: "/volumes", wantRoute: "GET /volumes"},
		{name: "volume named create is GET", giveMeth: "GET", givePath: "/volumes/create", wantRoute: "GET /volumes/{name}", wantVars: map[string]string{"name": "create"}},
		{name: "unknown path", giveMeth: "GET", givePath: "/nosuchthing"},
		{name: "wrong method", giveMeth: "GET", givePath: "/containers/abc/start"},
		{name: "unknown child", giveMeth: "GET", givePath: "/containers/abc/nosuch"},
		{name: "trailing slash", giveMeth: "GET", givePath: "/containers/json/"},
		{name: "trailing slash on single segment", giveMeth: "GET", givePath: "/_ping/"},
		{name: "empty parameter", giveMeth: "GET", givePath: "/containers//json"},
		{name: "root", giveMeth: "GET", givePath: "/"},
		{name: "unsupported method", giveMeth: "PATCH", givePath: "/containers/json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, vars, ok := rt.Lookup(tt.giveMeth, tt.givePath)
			if tt.wantRoute == "" {
				if ok {
					t.Fatalf("routed to %q, want no route", routeOf(t, h))
				}
				return
			}
			if !ok {
				t.Fatalf("no route, want %q", tt.wantRoute)
			}
			if got := routeOf(t, h); got != tt.wantRoute {
				t.Fatalf("routed to %q, want %q", got, tt.wantRoute)
			}
			for k, v := range tt.wantVars {
				if vars[k] != v {
					t.Errorf("vars[%s] = %q, want %q", k, vars[k], v)
				}
			}
		})
	}
}

func TestCompileErrors(t *testing.T) {
	nop := func(context.Context, http.ResponseWriter, *http.Request, map[string]string) error { return nil }
	tests := []struct {
		name    string
		give    []Route
		wantErr string
	}{
		{name: "duplicate with other parameter name", give: []Route{{"GET", "/containers/{id}/json", nop}, {"GET", "/containers/{name}/json", nop}}, wantErr: "declared twice"},
		{name: "parameter first", give: []Route{{"GET", "/{x}/json", nop}}, wantErr: "first segment must be static"},
		{name: "partial parameter", give: []Route{{"GET", "/images/x{name}", nop}}, wantErr: "whole segments"},
		{name: "no leading slash", give: []Route{{"GET", "images/json", nop}}, wantErr: "must start with /"},
		{name: "empty segment", give: []Route{{"GET", "/images//json", nop}}, wantErr: "empty path segment"},
		{name: "bad method", give: []Route{{"PATCH", "/images/json", nop}}, wantErr: "unsupported method"},
		{name: "nil handler", give: []Route{{"GET", "/images/json", nil}}, wantErr: "nil handler"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := CompileRoutes(tt.give)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
		})
	}
}
