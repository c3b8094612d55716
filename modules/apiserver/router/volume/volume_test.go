package volume

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/volume"
	"go.uber.org/zap"

	"github.com/wharfd/wharfd/modules/apiserver"
	"github.com/wharfd/wharfd/modules/config"
	"github.com/wharfd/wharfd/modules/volumes"
)

// serve runs the volume routes over a real service in a temporary
// directory behind the real apiserver handler.
func serve(t *testing.T) (*httptest.Server, *volumes.Service) {
	t.Helper()
	s, err := volumes.New(volumes.Options{Root: filepath.Join(t.TempDir(), "volumes"), UID: os.Geteuid(), GID: os.Getegid()})
	if err != nil {
		t.Fatal(err)
	}
	mw, err := apiserver.NewMiddlewares(apiserver.MiddlewaresParams{Config: &config.Config{}, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	res := New(s)
	rt, err := apiserver.CompileRoutes(res.Routes)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(apiserver.NewHandler(rt, mw, zap.NewNop()))
	t.Cleanup(srv.Close)
	return srv, s
}

func do(t *testing.T, srv *httptest.Server, method, path, body string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

func message(b []byte) string {
	var e struct{ Message string }
	json.Unmarshal(b, &e)
	return e.Message
}

func filters(s string) string { return "filters=" + url.QueryEscape(s) }

func TestCreateInspectList(t *testing.T) {
	srv, _ := serve(t)
	code, b := do(t, srv, "POST", "/v1.56/volumes/create", `{"Name":"data","Labels":{"app":"web"},"DriverOpts":{"type":"tmpfs","device":"tmpfs","o":"size=1m"}}`)
	if code != http.StatusCreated {
		t.Fatalf("create: %d %s", code, b)
	}
	var v volume.Volume
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	if v.Name != "data" || v.Driver != "local" || v.Scope != "local" || v.Labels["app"] != "web" || v.Options["o"] != "size=1m" || !strings.HasSuffix(v.Mountpoint, "/volumes/data/_data") {
		t.Errorf("created %+v", v)
	}

	code, b = do(t, srv, "GET", "/volumes/data", "")
	var got volume.Volume
	json.Unmarshal(b, &got)
	if code != http.StatusOK || got.Name != "data" || got.CreatedAt != v.CreatedAt {
		t.Errorf("inspect: %d %s", code, b)
	}
	// Labels and Options are always present, null when none.
	do(t, srv, "POST", "/volumes/create", `{"Name":"bare"}`)
	_, b = do(t, srv, "GET", "/volumes/bare", "")
	var raw map[string]json.RawMessage
	json.Unmarshal(b, &raw)
	if string(raw["Labels"]) != "null" || string(raw["Options"]) != "null" || raw["Status"] != nil {
		t.Errorf("inspect bare: %s", b)
	}

	code, b = do(t, srv, "GET", "/volumes?"+filters(`{"label":{"app=web":true}}`), "")
	var list volume.ListResponse
	json.Unmarshal(b, &list)
	if code != http.StatusOK || len(list.Volumes) != 1 || list.Volumes[0].Name != "data" {
		t.Errorf("list by label: %d %s", code, b)
	}
	if !strings.Contains(string(b), `"Warnings":null`) {
		t.Errorf("list body %s: want Warnings null, as dockerd", b)
	}
	// The legacy filter form.
	_, b = do(t, srv, "GET", "/volumes?"+filters(`{"name":["bar"]}`), "")
	json.Unmarshal(b, &list)
	if len(list.Volumes) != 1 || list.Volumes[0].Name != "bare" {
		t.Errorf("list by name: %s", b)
	}
	code, b = do(t, srv, "GET", "/volumes?"+filters(`{"name":{"nothing":true}}`), "")
	if code != http.StatusOK || !strings.Contains(string(b), `"Volumes":[]`) {
		t.Errorf("empty list: %d %s", code, b)
	}
}

func TestCreateEmptyBody(t *testing.T) {
	srv, _ := serve(t)
	for _, body := range []string{"", "{}"} {
		code, b := do(t, srv, "POST", "/volumes/create", body)
		var v volume.Volume
		json.Unmarshal(b, &v)
		if code != http.StatusCreated || !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(v.Name) {
			t.Errorf("create with body %q: %d %s", body, code, b)
		}
		if _, ok := v.Labels[volumes.AnonymousLabel]; !ok {
			t.Errorf("anonymous volume without the anonymous label: %s", b)
		}
	}
}

func TestErrors(t *testing.T) {
	tests := []struct {
		name        string
		giveMethod  string
		givePath    string
		giveBody    string
		wantCode    int
		wantMessage string
	}{
		{"short name", "POST", "/volumes/create", `{"Name":"a"}`, 400,
			"create a: volume name is too short, names should be at least two alphanumeric characters"},
		{"bad name", "POST", "/volumes/create", `{"Name":"a b"}`, 400,
			`create a b: "a b" includes invalid characters for a local volume name, only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host directory, use absolute path`},
		{"unknown option", "POST", "/volumes/create", `{"Name":"x1","DriverOpts":{"foo":"bar"}}`, 400, `create x1: invalid option: "foo"`},
		{"unknown driver", "POST", "/volumes/create", `{"Name":"x1","Driver":"nfs"}`, 404,
			`create x1: error looking up volume plugin nfs: plugin "nfs" not found`},
		{"bad json", "POST", "/volumes/create", `{"Name":`, 400, "invalid JSON: got EOF while reading request body"},
		{"cluster volume", "POST", "/volumes/create", `{"Name":"x1","ClusterVolumeSpec":{}}`, 503,
			`This node is not a swarm manager. Use "docker swarm init" or "docker swarm join" to connect this node to swarm and try again.`},
		{"inspect missing", "GET", "/volumes/nosuch", "", 404, "get nosuch: no such volume"},
		{"inspect slashes", "GET", "/volumes/a/b", "", 404, "get a/b: no such volume"},
		{"remove missing", "DELETE", "/volumes/nosuch", "", 404, "get nosuch: no such volume"},
		{"list bad filter key", "GET", "/volumes?" + filters(`{"until":{"1h":true}}`), "", 400, "invalid filter 'until'"},
		{"list bad dangling", "GET", "/volumes?" + filters(`{"dangling":{"maybe":true}}`), "", 400, "invalid filter 'dangling=[maybe]'"},
		{"list bad filters", "GET", "/volumes?filters=nope", "", 400, "error reading volume filters: invalid filter"},
		{"prune bad filter", "POST", "/volumes/prune?" + filters(`{"dangling":{"true":true}}`), "", 400, "invalid filter 'dangling'"},
		{"prune bad all", "POST", "/volumes/prune?" + filters(`{"all":{"yes":true}}`), "", 400,
			`invalid filter 'all': strconv.ParseBool: parsing "yes": invalid syntax`},
		{"update", "PUT", "/volumes/x1?version=1", `{}`, 503, "volume update only valid for cluster volumes, but swarm is unavailable"},
		{"update old api", "PUT", "/v1.41/volumes/x1?version=1", `{}`, 400, "PUT /volumes/{name:.*} requires minimum API version 1.42"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, s := serve(t)
			code, b := do(t, srv, tt.giveMethod, tt.givePath, tt.giveBody)
			if code != tt.wantCode || !strings.HasPrefix(message(b), tt.wantMessage) {
				t.Errorf("%d %s, want %d %q", code, b, tt.wantCode, tt.wantMessage)
			}
			if vols, _, _ := s.List(context.Background(), nil); len(vols) != 0 {
				t.Errorf("a failed request left %d volumes", len(vols))
			}
		})
	}
}

func TestRemove(t *testing.T) {
	srv, s := serve(t)
	do(t, srv, "POST", "/volumes/create", `{"Name":"data"}`)
	if err := s.Acquire("data", "0123456789ab"); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/volumes/data", "/volumes/data?force=1"} {
		code, b := do(t, srv, "DELETE", path, "")
		if code != http.StatusConflict || message(b) != "remove data: volume is in use - [0123456789ab]" {
			t.Errorf("DELETE %s in use: %d %s", path, code, b)
		}
	}
	if _, err := s.Get(context.Background(), "data"); err != nil {
		t.Fatalf("volume gone after refused removal: %v", err)
	}
	s.Release("data", "0123456789ab")
	if code, b := do(t, srv, "DELETE", "/volumes/data", ""); code != http.StatusNoContent || len(b) != 0 {
		t.Errorf("DELETE: %d %s", code, b)
	}
	if code, b := do(t, srv, "DELETE", "/volumes/data?force=true", ""); code != http.StatusNoContent {
		t.Errorf("DELETE missing with force: %d %s", code, b)
	}
}

func TestPrune(t *testing.T) {
	tests := []struct {
		name        string
		givePath    string
		wantDeleted int
	}{
		{"anonymous only", "/volumes/prune", 1},
		{"all", "/volumes/prune?" + filters(`{"all":{"true":true}}`), 2},
		{"old api prunes all", "/v1.41/volumes/prune", 2},
		{"label", "/volumes/prune?" + filters(`{"all":{"1":true},"label!":{"keep":true}}`), 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, _ := serve(t)
			do(t, srv, "POST", "/volumes/create", `{}`)
			do(t, srv, "POST", "/volumes/create", `{"Name":"named","Labels":{"keep":"1"}}`)
			code, b := do(t, srv, "POST", tt.givePath, "")
			var rep volume.PruneReport
			json.Unmarshal(b, &rep)
			if code != http.StatusOK || len(rep.VolumesDeleted) != tt.wantDeleted {
				t.Errorf("%d %s, want %d deleted", code, b, tt.wantDeleted)
			}
		})
	}
}

func TestDiskUsage(t *testing.T) {
	_, s := serve(t)
	s.Create(context.Background(), volumes.CreateOptions{Name: "data"})
	u, err := New(s).DiskUsage.DiskUsage(context.Background(), true)
	if err != nil {
		t.Fatal(err)
	}
	if u.Volumes == nil || u.Volumes.TotalCount != 1 || len(u.Volumes.Items) != 1 || u.Volumes.Items[0].UsageData == nil || u.Images != nil {
		t.Errorf("usage = %+v", u)
	}
}
