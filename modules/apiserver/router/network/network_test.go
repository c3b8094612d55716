package network

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	nettypes "github.com/moby/moby/api/types/network"
	"golang.org/x/sys/unix"

	"github.com/wharfd/wharfd/modules/apiserver"
	"github.com/wharfd/wharfd/modules/config"
	wnet "github.com/wharfd/wharfd/modules/network"
)

// serve runs one request through the router's compiled routes, errors
// mapped as the apiserver maps them.
func serve(t *testing.T, rt *Router, method, path, body string) *httptest.ResponseRecorder {
	t.Helper()
	compiled, err := apiserver.CompileRoutes(rt.Routes())
	if err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	rec := httptest.NewRecorder()
	h, vars, ok := compiled.Lookup(method, req.URL.Path)
	if !ok {
		t.Fatalf("no route for %s %s", method, path)
	}
	if err := h(context.Background(), rec, req, vars); err != nil {
		apiserver.WriteError(rec, err)
	}
	return rec
}

// fakeBackend serves a fixed list.
type fakeBackend struct {
	nets []nettypes.Inspect
}

func (f *fakeBackend) List(context.Context) []nettypes.Inspect { return f.nets }
func (f *fakeBackend) Get(_ context.Context, ref string) (nettypes.Inspect, error) {
	for _, n := range f.nets {
		if n.ID == ref || n.Name == ref {
			return n, nil
		}
	}
	return nettypes.Inspect{}, cerrdefs.ErrNotFound.WithMessage("network " + ref + " not found")
}
func (f *fakeBackend) Create(context.Context, nettypes.CreateRequest) (nettypes.CreateResponse, error) {
	return nettypes.CreateResponse{}, nil
}
func (f *fakeBackend) Remove(context.Context, string) error { return nil }
func (f *fakeBackend) Prune(_ context.Context, keep func(nettypes.Inspect) bool) ([]string, error) {
	var out []string
	for _, n := range f.nets {
		if !isBuiltin(n) && keep(n) {
			out = append(out, n.Name)
		}
	}
	return out, nil
}

func fakeNet(id, name, driver string, labels map[string]string, containers int, created time.Time) nettypes.Inspect {
	n := nettypes.Inspect{Network: nettypes.Network{ID: id, Name: name, Driver: driver, Scope: "local", Labels: labels, Created: created}, Containers: map[string]nettypes.EndpointResource{}}
	for i := range containers {
		n.Containers[string(rune('a'+i))] = nettypes.EndpointResource{}
	}
	return n
}

func TestListFilters(t *testing.T) {
	old := time.Now().Add(-48 * time.Hour)
	b := &fakeBackend{nets: []nettypes.Inspect{
		fakeNet("aaa111", "bridge", "bridge", nil, 0, old),
		fakeNet("bbb222", "host", "host", nil, 0, old),
		fakeNet("ccc333", "none", "null", nil, 0, old),
		fakeNet("ddd444", "frontend", "bridge", map[string]string{"tier": "web"}, 1, old),
		fakeNet("ddd555", "backend", "bridge", map[string]string{"tier": "db", "x": ""}, 0, time.Now()),
	}}
	rt := NewRouter(b, nil)
	tests := []struct {
		name       string
		giveFilter string
		wantStatus int
		want       []string
		wantMsg    string
	}{
		{name: "all", want: []string{"bridge", "host", "none", "frontend", "backend"}, wantStatus: 200},
		{name: "driver", giveFilter: `{"driver":{"bridge":true}}`, want: []string{"bridge", "frontend", "backend"}, wantStatus: 200},
		{name: "id prefix", giveFilter: `{"id":{"ddd":true}}`, want: []string{"frontend", "backend"}, wantStatus: 200},
		{name: "name substring", giveFilter: `{"name":{"end":true}}`, want: []string{"frontend", "backend"}, wantStatus: 200},
		{name: "label key", giveFilter: `{"label":{"x":true}}`, want: []string{"backend"}, wantStatus: 200},
		{name: "label value", giveFilter: `{"label":{"tier=web":true}}`, want: []string{"frontend"}, wantStatus: 200},
		{name: "type custom", giveFilter: `{"type":{"custom":true}}`, want: []string{"frontend", "backend"}, wantStatus: 200},
		{name: "type builtin", giveFilter: `{"type":{"builtin":true}}`, want: []string{"bridge", "host", "none"}, wantStatus: 200},
		{name: "dangling", giveFilter: `{"dangling":{"true":true}}`, want: []string{"backend"}, wantStatus: 200},
		{name: "not dangling", giveFilter: `{"dangling":{"false":true}}`, want: []string{"bridge", "host", "none", "frontend"}, wantStatus: 200},
		{name: "scope", giveFilter: `{"scope":{"swarm":true}}`, want: []string{}, wantStatus: 200},
		{name: "legacy form", giveFilter: `{"name":["front"]}`, want: []string{"frontend"}, wantStatus: 200},
		{name: "unknown key", giveFilter: `{"colour":{"red":true}}`, wantStatus: 400, wantMsg: "invalid filter 'colour'"},
		{name: "bad type", giveFilter: `{"type":{"odd":true}}`, wantStatus: 400, wantMsg: "invalid filter: 'type'='odd'"},
		{name: "bad dangling", giveFilter: `{"dangling":{"maybe":true}}`, wantStatus: 400, wantMsg: "'dangling'='maybe'"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := "/networks"
			if tt.giveFilter != "" {
				path += "?filters=" + url.QueryEscape(tt.giveFilter)
			}
			rec := serve(t, rt, "GET", path, "")
			if rec.Code != tt.wantStatus {
				t.Fatalf("status %d, want %d: %s", rec.Code, tt.wantStatus, rec.Body)
			}
			if tt.wantMsg != "" {
				if !strings.Contains(rec.Body.String(), tt.wantMsg) {
					t.Errorf("body %s, want %q", rec.Body, tt.wantMsg)
				}
				return
			}
			var got []nettypes.Summary
			if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
				t.Fatal(err)
			}
			names := []string{}
			for _, n := range got {
				names = append(names, n.Name)
			}
			if !slices.Equal(names, tt.want) {
				t.Errorf("names %v, want %v", names, tt.want)
			}
		})
	}
}

func TestPruneFilters(t *testing.T) {
	old := time.Now().Add(-48 * time.Hour)
	b := &fakeBackend{nets: []nettypes.Inspect{
		fakeNet("1", "bridge", "bridge", nil, 0, old),
		fakeNet("2", "old", "bridge", map[string]string{"keep": "no"}, 0, old),
		fakeNet("3", "new", "bridge", nil, 0, time.Now()),
	}}
	rt := NewRouter(b, nil)
	tests := []struct {
		name       string
		giveFilter string
		wantStatus int
		want       []string
	}{
		{name: "all", wantStatus: 200, want: []string{"old", "new"}},
		{name: "until duration", giveFilter: `{"until":{"24h":true}}`, wantStatus: 200, want: []string{"old"}},
		{name: "label", giveFilter: `{"label":{"keep=no":true}}`, wantStatus: 200, want: []string{"old"}},
		{name: "label not", giveFilter: `{"label!":{"keep":true}}`, wantStatus: 200, want: []string{"new"}},
		{name: "bad until", giveFilter: `{"until":{"soon":true}}`, wantStatus: 400},
		{name: "bad key", giveFilter: `{"driver":{"bridge":true}}`, wantStatus: 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := "/networks/prune"
			if tt.giveFilter != "" {
				path += "?filters=" + url.QueryEscape(tt.giveFilter)
			}
			rec := serve(t, rt, "POST", path, "")
			if rec.Code != tt.wantStatus {
				t.Fatalf("status %d, want %d: %s", rec.Code, tt.wantStatus, rec.Body)
			}
			if tt.wantStatus != 200 {
				return
			}
			var got nettypes.PruneReport
			if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got.NetworksDeleted, tt.want) {
				t.Errorf("deleted %v, want %v", got.NetworksDeleted, tt.want)
			}
		})
	}
}

// testNS makes a network namespace of the test's own, so the controller
// below never touches the host's links or packet filter.
func testNS(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: the controller creates bridges and nftables rules in a namespace of its own")
	}
	path := filepath.Join(t.TempDir(), "netns")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with the goroutine
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			errc <- err
			return
		}
		errc <- unix.Mount("/proc/thread-self/ns/net", path, "", unix.MS_BIND, "")
	}()
	if err := <-errc; err != nil {
		t.Skipf("cannot create a network namespace: %v", err)
	}
	t.Cleanup(func() { unix.Unmount(path, unix.MNT_DETACH) })
	return path
}

func TestHandlersOverController(t *testing.T) {
	ns := testNS(t)
	c, err := wnet.New(wnet.Options{
		Root: t.TempDir(), NetNS: ns, Bridge: wnet.BridgeMode{Name: "docker0"},
		Pools: []config.AddressPool{{Base: netip.MustParsePrefix("10.125.0.0/16"), Size: 24}},
		ICC:   true, IPTables: true, IPMasq: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	rt := NewRouter(c, nil)
	steps := []struct {
		name       string
		giveMethod string
		givePath   string
		giveBody   string
		wantStatus int
		wantBody   string
	}{
		{name: "create", giveMethod: "POST", givePath: "/networks/create", giveBody: `{"Name":"web","Labels":{"a":"b"},"IPAM":{"Config":[{"Subnet":"10.126.0.0/24"}]}}`, wantStatus: 201, wantBody: `"Id":`},
		{name: "duplicate", giveMethod: "POST", givePath: "/networks/create", giveBody: `{"Name":"web"}`, wantStatus: 409, wantBody: "network with name web already exists"},
		{name: "overlap", giveMethod: "POST", givePath: "/networks/create", giveBody: `{"Name":"o","IPAM":{"Config":[{"Subnet":"10.126.0.0/25"}]}}`, wantStatus: 403, wantBody: "Pool overlaps"},
		{name: "bad cidr", giveMethod: "POST", givePath: "/networks/create", giveBody: `{"Name":"b","IPAM":{"Config":[{"Subnet":"10.0.0.0/40"}]}}`, wantStatus: 400},
		{name: "gateway outside", giveMethod: "POST", givePath: "/networks/create", giveBody: `{"Name":"g","IPAM":{"Config":[{"Subnet":"10.127.0.0/24","Gateway":"10.128.0.1"}]}}`, wantStatus: 400, wantBody: "not in subnet"},
		{name: "bad json", giveMethod: "POST", givePath: "/networks/create", giveBody: `{"Name":`, wantStatus: 400},
		{name: "inspect", giveMethod: "GET", givePath: "/networks/web", wantStatus: 200, wantBody: `"Subnet":"10.126.0.0/24"`},
		{name: "inspect scope", giveMethod: "GET", givePath: "/networks/web?scope=swarm", wantStatus: 404},
		{name: "inspect missing", giveMethod: "GET", givePath: "/networks/nosuch", wantStatus: 404, wantBody: "network nosuch not found"},
		{name: "list", giveMethod: "GET", givePath: "/networks", wantStatus: 200, wantBody: `"Name":"web"`},
		{name: "connect without containers", giveMethod: "POST", givePath: "/networks/web/connect", giveBody: `{"Container":"c1"}`, wantStatus: 404, wantBody: "No such container: c1"},
		{name: "disconnect without containers", giveMethod: "POST", givePath: "/networks/web/disconnect", giveBody: `{"Container":"c1"}`, wantStatus: 404, wantBody: "No such container: c1"},
		{name: "remove builtin", giveMethod: "DELETE", givePath: "/networks/bridge", wantStatus: 403, wantBody: "bridge is a pre-defined network and cannot be removed"},
		{name: "remove", giveMethod: "DELETE", givePath: "/networks/web", wantStatus: 204},
		{name: "gone", giveMethod: "GET", givePath: "/networks/web", wantStatus: 404},
		{name: "create for prune", giveMethod: "POST", givePath: "/networks/create", giveBody: `{"Name":"p1"}`, wantStatus: 201},
		{name: "prune", giveMethod: "POST", givePath: "/networks/prune", wantStatus: 200, wantBody: `{"NetworksDeleted":["p1"]}`},
	}
	for _, tt := range steps {
		t.Run(tt.name, func(t *testing.T) {
			rec := serve(t, rt, tt.giveMethod, tt.givePath, tt.giveBody)
			if rec.Code != tt.wantStatus {
				t.Fatalf("status %d, want %d: %s", rec.Code, tt.wantStatus, rec.Body)
			}
			if !bytes.Contains(rec.Body.Bytes(), []byte(tt.wantBody)) {
				t.Errorf("body %s, want %q", rec.Body, tt.wantBody)
			}
		})
	}
	rules, err := wnet.FilterRules(ns)
	if err != nil {
		t.Fatal(err)
	}
	br, _ := c.Get(context.Background(), "bridge")
	for _, r := range rules {
		if !strings.HasSuffix(r, br.ID) {
			t.Errorf("rule left that is not the default bridge's: %s", r)
		}
	}
}
