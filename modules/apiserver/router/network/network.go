package network

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	nettypes "github.com/moby/moby/api/types/network"
	"go.uber.org/fx"

	"github.com/wharfd/wharfd/modules/apiserver"
	"github.com/wharfd/wharfd/modules/apiserver/router/system"
	wnet "github.com/wharfd/wharfd/modules/network"
)

// Params are the inputs of the network router stage.
type Params struct {
	fx.In

	// Controller is the network controller of stage 3.22.
	Controller *wnet.Controller
	// Containers, when the containers module provides it, serves connect
	// and disconnect.
	Containers Containers `optional:"true"`
}

// Result is what the stage provides: its routes, and the network drivers
// for /info's Plugins.
type Result struct {
	fx.Out

	Routes  []apiserver.Route `group:"routes,flatten"`
	Plugins system.PluginSet  `group:"plugins"`
}

// New is the network router stage.
func New(p Params) Result {
	return Result{
		Routes:  NewRouter(p.Controller, p.Containers).Routes(),
		Plugins: system.PluginSet{Kind: "Network", Names: []string{"bridge", "host", "null"}},
	}
}

// Router serves the network routes.
type Router struct {
	b  Backend
	cs Containers // nil until the containers module provides it
}

// NewRouter returns a router over b; cs may be nil.
func NewRouter(b Backend, cs Containers) *Router { return &Router{b: b, cs: cs} }

// Routes returns the network routes in Docker's form.
func (rt *Router) Routes() []apiserver.Route {
	return []apiserver.Route{
		{Method: http.MethodGet, Path: "/networks", Handler: rt.list},
		{Method: http.MethodGet, Path: "/networks/{id}", Handler: rt.inspect},
		{Method: http.MethodPost, Path: "/networks/create", Handler: rt.create},
		{Method: http.MethodPost, Path: "/networks/{id}/connect", Handler: rt.connect},
		{Method: http.MethodPost, Path: "/networks/{id}/disconnect", Handler: rt.disconnect},
		{Method: http.MethodDelete, Path: "/networks/{id}", Handler: rt.remove},
		{Method: http.MethodPost, Path: "/networks/prune", Handler: rt.prune},
	}
}

func invalid(format string, a ...any) error {
	return cerrdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf(format, a...))
}

// listFilters are the filters GET /networks accepts.
var listFilters = map[string]bool{"driver": true, "id": true, "label": true, "name": true, "scope": true, "type": true, "dangling": true}

// list is GET /networks: every network, filtered as dockerd filters
// (driver exact, id prefix, name regular expression or substring, label
// key or key=value, scope, type custom|builtin, dangling), without
// Containers.
func (rt *Router) list(ctx context.Context, w http.ResponseWriter, r *http.Request, _ map[string]string) error {
	if err := apiserver.ParseForm(r); err != nil {
		return err
	}
	f, err := apiserver.Filters(r)
	if err != nil {
		return err
	}
	match, err := compileFilters(f)
	if err != nil {
		return err
	}
	out := []nettypes.Summary{}
	for _, n := range rt.b.List(ctx) {
		if match(n) {
			out = append(out, nettypes.Summary{Network: n.Network})
		}
	}
	return apiserver.WriteJSON(w, http.StatusOK, out)
}

// compileFilters checks the list filters and returns the predicate they
// make; values of one key are alternatives, keys all apply.
func compileFilters(f map[string][]string) (func(nettypes.Inspect) bool, error) {
	for k := range f {
		if !listFilters[k] {
			return nil, invalid("invalid filter '%s'", k)
		}
	}
	for _, v := range f["type"] {
		if v != "custom" && v != "builtin" {
			return nil, invalid("invalid filter: 'type'='%s'", v)
		}
	}
	var dangling *bool
	for _, v := range f["dangling"] {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return nil, invalid("invalid filter: 'dangling'='%s'", v)
		}
		dangling = &b
	}
	var names []*regexp.Regexp
	for _, v := range f["name"] {
		re, err := regexp.Compile(v)
		if err != nil {
			re = regexp.MustCompile(regexp.QuoteMeta(v))
		}
		names = append(names, re)
	}
	anyOf := func(vals []string, ok func(string) bool) bool {
		if len(vals) == 0 {
			return true
		}
		for _, v := range vals {
			if ok(v) {
				return true
			}
		}
		return false
	}
	return func(n nettypes.Inspect) bool {
		builtin := isBuiltin(n)
		switch {
		case !anyOf(f["driver"], func(v string) bool { return v == n.Driver }),
			!anyOf(f["id"], func(v string) bool { return strings.HasPrefix(n.ID, v) }),
			!anyOf(f["scope"], func(v string) bool { return v == n.Scope }),
			!anyOf(f["type"], func(v string) bool { return (v == "builtin") == builtin }),
			!labelsMatch(f["label"], n.Labels):
			return false
		}
		if len(names) > 0 {
			ok := false
			for _, re := range names {
				ok = ok || re.MatchString(n.Name)
			}
			if !ok {
				return false
			}
		}
		if dangling != nil && *dangling != (!builtin && len(n.Containers) == 0) {
			return false
		}
		return true
	}, nil
}

// labelsMatch reports whether labels has every "key" or "key=value" of
// want.
func labelsMatch(want []string, labels map[string]string) bool {
	for _, w := range want {
		k, v, hasValue := strings.Cut(w, "=")
		got, ok := labels[k]
		if !ok || (hasValue && got != v) {
			return false
		}
	}
	return true
}

func isBuiltin(n nettypes.Inspect) bool {
	return n.Name == nettypes.NetworkBridge || n.Name == nettypes.NetworkHost || n.Name == nettypes.NetworkNone
}

// inspect is GET /networks/{id}; a scope other than the network's is
// 404, as dockerd.
func (rt *Router) inspect(ctx context.Context, w http.ResponseWriter, r *http.Request, vars map[string]string) error {
	if err := apiserver.ParseForm(r); err != nil {
		return err
	}
	n, err := rt.b.Get(ctx, vars["id"])
	if err != nil {
		return err
	}
	if s := r.Form.Get("scope"); s != "" && s != n.Scope {
		return cerrdefs.ErrNotFound.WithMessage(fmt.Sprintf("network %s not found", vars["id"]))
	}
	return apiserver.WriteJSON(w, http.StatusOK, n)
}

// create is POST /networks/create: 201 with the ID.
func (rt *Router) create(ctx context.Context, w http.ResponseWriter, r *http.Request, _ map[string]string) error {
	var req nettypes.CreateRequest
	if err := apiserver.ReadJSON(r, &req); err != nil {
		return err
	}
	resp, err := rt.b.Create(ctx, req)
	if err != nil {
		return err
	}
	return apiserver.WriteJSON(w, http.StatusCreated, resp)
}

// errNoSuchContainer is dockerd's 404 for an unknown container.
func errNoSuchContainer(name string) error {
	return cerrdefs.ErrNotFound.WithMessage("No such container: " + name)
}

// connect is POST /networks/{id}/connect.
func (rt *Router) connect(ctx context.Context, w http.ResponseWriter, r *http.Request, vars map[string]string) error {
	var req nettypes.ConnectRequest
	if err := apiserver.ReadJSON(r, &req); err != nil {
		return err
	}
	if req.Container == "" {
		return invalid("container is required")
	}
	if rt.cs == nil {
		return errNoSuchContainer(req.Container)
	}
	if err := rt.cs.ConnectContainerToNetwork(ctx, req.Container, vars["id"], req.EndpointConfig); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

// disconnect is POST /networks/{id}/disconnect.
func (rt *Router) disconnect(ctx context.Context, w http.ResponseWriter, r *http.Request, vars map[string]string) error {
	var req nettypes.DisconnectRequest
	if err := apiserver.ReadJSON(r, &req); err != nil {
		return err
	}
	if req.Container == "" {
		return invalid("container is required")
	}
	if rt.cs == nil {
		return errNoSuchContainer(req.Container)
	}
	if err := rt.cs.DisconnectContainerFromNetwork(ctx, req.Container, vars["id"], req.Force); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

// remove is DELETE /networks/{id}: 204.
func (rt *Router) remove(ctx context.Context, w http.ResponseWriter, r *http.Request, vars map[string]string) error {
	if err := rt.b.Remove(ctx, vars["id"]); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// pruneFilters are the filters POST /networks/prune accepts.
var pruneFilters = map[string]bool{"until": true, "label": true, "label!": true}

// prune is POST /networks/prune: unused user networks go, filtered by
// until (created before: a Unix timestamp, an RFC 3339 date or a
// duration back from now), label and label!.
func (rt *Router) prune(ctx context.Context, w http.ResponseWriter, r *http.Request, _ map[string]string) error {
	if err := apiserver.ParseForm(r); err != nil {
		return err
	}
	f, err := apiserver.Filters(r)
	if err != nil {
		return err
	}
	for k := range f {
		if !pruneFilters[k] {
			return invalid("invalid filter '%s'", k)
		}
	}
	var until time.Time
	for _, v := range f["until"] {
		t, err := parseUntil(v, time.Now())
		if err != nil {
			return err
		}
		until = t
	}
	keep := func(n nettypes.Inspect) bool {
		if !until.IsZero() && !n.Created.Before(until) {
			return false
		}
		if !labelsMatch(f["label"], n.Labels) {
			return false
		}
		for _, l := range f["label!"] {
			if labelsMatch([]string{l}, n.Labels) {
				return false
			}
		}
		return true
	}
	names, err := rt.b.Prune(ctx, keep)
	if err != nil {
		return err
	}
	if names == nil {
		names = []string{}
	}
	return apiserver.WriteJSON(w, http.StatusOK, nettypes.PruneReport{NetworksDeleted: names})
}

// parseUntil reads an until filter as dockerd: a Unix timestamp (with
// optional fraction), an RFC 3339 date, or a Go duration before now.
func parseUntil(v string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(v); err == nil {
		return now.Add(-d), nil
	}
	if secs, err := strconv.ParseFloat(v, 64); err == nil {
		return time.Unix(0, int64(secs*1e9)), nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.Parse(layout, v); err == nil {
			return t, nil
		}
	}
	return time.Time{}, invalid("invalid filter 'until=%s': not a timestamp, date or duration", v)
}
