package system

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	eventtypes "github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/image"
	"github.com/moby/moby/api/types/system"
	"go.uber.org/goleak"
	"go.uber.org/zap"

	"github.com/wharfd/wharfd/modules/apiserver"
	"github.com/wharfd/wharfd/modules/config"
	"github.com/wharfd/wharfd/modules/events"
	"github.com/wharfd/wharfd/modules/host"
	"github.com/wharfd/wharfd/pipeline"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

type fakeContainers struct{}

func (fakeContainers) ContainerCounts() (int, int, int) { return 2, 1, 3 }

type fakeInit struct{}

func (fakeInit) InitBinary() (string, string) { return "tini-static", "0.19.0" }

type fakeImages struct{}

func (fakeImages) ImageCount() int { return 4 }

type fakeStorage struct{}

func (fakeStorage) DriverStatus() (string, [][2]string) {
	return "vfs", [][2]string{{"Backing Filesystem", "extfs"}}
}

type fakeImageUsage struct{}

func (fakeImageUsage) DiskUsage(_ context.Context, verbose bool) (Usage, error) {
	u := &image.DiskUsage{TotalCount: 1, TotalSize: 4096}
	if verbose {
		u.Items = []image.Summary{{ID: "sha256:abc", Size: 4096}}
	}
	return Usage{Images: u}, nil
}

// serve runs the routes of r behind the real apiserver handler.
func serve(t *testing.T, cfg *config.Config, routes []apiserver.Route) *httptest.Server {
	t.Helper()
	mw, err := apiserver.NewMiddlewares(apiserver.MiddlewaresParams{Config: cfg, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	rt, err := apiserver.CompileRoutes(routes)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(apiserver.NewHandler(rt, mw, zap.NewNop()))
	t.Cleanup(srv.Close)
	return srv
}

func testFacts(t *testing.T) factPaths {
	t.Helper()
	dir := t.TempDir()
	osr := filepath.Join(dir, "os-release")
	if err := os.WriteFile(osr, []byte("NAME=\"Test\"\nPRETTY_NAME=\"Test Linux 9\"\nVERSION_ID=\"9\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cg := filepath.Join(dir, "cgroup")
	if err := os.MkdirAll(filepath.Join(cg, "daemon.slice"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(cg, "cgroup.controllers"), []byte("cpuset cpu io memory pids\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(cg, "daemon.slice", "cgroup.controllers"), []byte("cpu memory\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	self := filepath.Join(dir, "self-cgroup")
	if err := os.WriteFile(self, []byte("0::/daemon.slice\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return factPaths{osRelease: []string{filepath.Join(dir, "missing"), osr}, cgroupRoot: cg, selfCgroup: self}
}

func newTestRouter(t *testing.T, p Params) (*Router, *httptest.Server) {
	t.Helper()
	if p.Config == nil {
		p.Config = &config.Config{DataRoot: "/data", LogDriver: "json-file", Labels: []string{"a=b"}, InsecureRegistries: []string{"10.0.0.0/8", "reg.local:5000"}, RegistryMirrors: []string{"https://mirror.example"}}
	}
	p.Logger = zap.NewNop()
	rt, err := newRouter(p, testFacts(t))
	if err != nil {
		t.Fatal(err)
	}
	return rt, serve(t, p.Config, rt.Routes())
}

func get(t *testing.T, srv *httptest.Server, method, path string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, srv.URL+path, nil)
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

func TestPing(t *testing.T) {
	_, srv := newTestRouter(t, Params{})
	for _, method := range []string{"GET", "HEAD"} {
		t.Run(method, func(t *testing.T) {
			resp, body := get(t, srv, method, "/_ping")
			wantBody := "OK"
			if method == "HEAD" {
				wantBody = ""
			}
			if resp.StatusCode != 200 || string(body) != wantBody {
				t.Errorf("%d %q", resp.StatusCode, body)
			}
			for k, want := range map[string]string{
				"Api-Version": "1.56", "Builder-Version": "1", "Swarm": "inactive",
				"Cache-Control": "no-cache, no-store, must-revalidate", "Pragma": "no-cache",
				"Docker-Experimental": "false", "Ostype": "linux",
			} {
				if got := resp.Header.Get(k); got != want {
					t.Errorf("%s = %q, want %q", k, got, want)
				}
			}
		})
	}
}

func TestVersion(t *testing.T) {
	_, srv := newTestRouter(t, Params{})
	resp, body := get(t, srv, "GET", "/v1.45/version")
	if resp.StatusCode != 200 {
		t.Fatal(resp.StatusCode)
	}
	var v system.VersionResponse
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatal(err)
	}
	if v.APIVersion != "1.56" || v.MinAPIVersion != "1.40" || v.Os != "linux" || v.GoVersion == "" || v.KernelVersion == "" {
		t.Errorf("version %+v", v)
	}
	if len(v.Components) == 0 || v.Components[0].Name != "Engine" || v.Components[0].Details["ApiVersion"] != "1.56" {
		t.Errorf("components %+v", v.Components)
	}
}

func TestInfo(t *testing.T) {
	tests := []struct {
		name        string
		giveParams  Params
		wantRunning int
		wantImages  int
		wantDriver  string
		wantID      string
		wantSec     string
		wantInit    string
	}{
		{name: "no modules yet"},
		{
			name: "with modules",
			giveParams: Params{
				Containers: fakeContainers{}, Images: fakeImages{}, Storage: fakeStorage{}, Init: fakeInit{},
				EngineID: host.EngineID{ID: "0b2c3d4e-0000-4000-8000-000000000000"},
				SELinux:  host.SELinux{Enabled: true},
				Plugins:  []PluginSet{{Kind: "Volume", Names: []string{"local"}}, {Kind: "Network", Names: []string{"null", "bridge"}}},
			},
			wantRunning: 2, wantImages: 4, wantDriver: "vfs", wantID: "0b2c3d4e-0000-4000-8000-000000000000", wantSec: "name=selinux",
			wantInit: "tini-static 0.19.0",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, srv := newTestRouter(t, tt.giveParams)
			resp, body := get(t, srv, "GET", "/info")
			if resp.StatusCode != 200 {
				t.Fatal(resp.StatusCode)
			}
			var info system.Info
			if err := json.Unmarshal(body, &info); err != nil {
				t.Fatal(err)
			}
			if info.ContainersRunning != tt.wantRunning || info.Images != tt.wantImages || info.Driver != tt.wantDriver || info.ID != tt.wantID {
				t.Errorf("running %d images %d driver %q id %q", info.ContainersRunning, info.Images, info.Driver, info.ID)
			}
			if got := strings.TrimSpace(info.InitBinary + " " + info.InitCommit.ID); got != tt.wantInit {
				t.Errorf("InitBinary, InitCommit = %q, want %q", got, tt.wantInit)
			}
			if tt.wantRunning != 0 && info.Containers != 6 {
				t.Errorf("Containers %d, want 6", info.Containers)
			}
			if tt.wantSec != "" && !strings.Contains(strings.Join(info.SecurityOptions, " "), tt.wantSec) {
				t.Errorf("security options %v", info.SecurityOptions)
			}
			if info.OperatingSystem != "Test Linux 9" || info.OSVersion != "9" || info.OSType != "linux" || info.DockerRootDir != "/data" {
				t.Errorf("os %q %q %q root %q", info.OperatingSystem, info.OSVersion, info.OSType, info.DockerRootDir)
			}
			if info.CgroupVersion != "2" || !info.MemoryLimit || !info.CPUShares || info.PidsLimit || info.CPUSet {
				t.Errorf("cgroup v%s memory %v cpu %v pids %v cpuset %v: want v2 from the daemon's own cgroup (cpu memory)", info.CgroupVersion, info.MemoryLimit, info.CPUShares, info.PidsLimit, info.CPUSet)
			}
			if info.NCPU < 1 || info.MemTotal <= 0 || info.KernelVersion == "" || info.Name == "" {
				t.Errorf("host facts missing: %d cpus, %d bytes, kernel %q, name %q", info.NCPU, info.MemTotal, info.KernelVersion, info.Name)
			}
			if len(info.Labels) != 1 || info.Labels[0] != "a=b" || info.Swarm.LocalNodeState != "inactive" || info.DefaultRuntime != "runc" {
				t.Errorf("labels %v swarm %q default runtime %q", info.Labels, info.Swarm.LocalNodeState, info.DefaultRuntime)
			}
			rc := info.RegistryConfig
			if rc == nil || len(rc.InsecureRegistryCIDRs) != 3 || rc.IndexConfigs["reg.local:5000"] == nil || rc.IndexConfigs["docker.io"].Mirrors[0] != "https://mirror.example/" {
				t.Errorf("registry config %+v", rc)
			}
			if tt.wantDriver != "" && (len(info.Plugins.Network) != 2 || info.Plugins.Network[0] != "bridge") {
				t.Errorf("plugins %+v", info.Plugins)
			}
		})
	}
}

func TestDiskUsage(t *testing.T) {
	_, srv := newTestRouter(t, Params{DiskUsage: []DiskUsage{fakeImageUsage{}}})
	tests := []struct {
		name       string
		givePath   string
		wantStatus int
		wantKeys   []string
		wantAbsent []string
	}{
		{name: "current", givePath: "/v1.56/system/df", wantStatus: 200, wantKeys: []string{"ImageUsage", "ContainerUsage", "VolumeUsage"}, wantAbsent: []string{"LayersSize", "Images"}},
		{name: "legacy", givePath: "/v1.51/system/df", wantStatus: 200, wantKeys: []string{"LayersSize", "Images", "Containers", "Volumes", "BuildCache", "ImageUsage"}},
		{name: "type", givePath: "/v1.56/system/df?type=image", wantStatus: 200, wantKeys: []string{"ImageUsage"}, wantAbsent: []string{"ContainerUsage"}},
		{name: "bad type", givePath: "/v1.56/system/df?type=nope", wantStatus: 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := get(t, srv, "GET", tt.givePath)
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			var m map[string]json.RawMessage
			_ = json.Unmarshal(body, &m)
			for _, k := range tt.wantKeys {
				if _, ok := m[k]; !ok {
					t.Errorf("no %s in %s", k, body)
				}
			}
			for _, k := range tt.wantAbsent {
				if _, ok := m[k]; ok {
					t.Errorf("%s in %s", k, body)
				}
			}
		})
	}
	_, body := get(t, srv, "GET", "/v1.51/system/df")
	var legacy struct {
		LayersSize int64
		Images     []image.Summary
	}
	if err := json.Unmarshal(body, &legacy); err != nil || legacy.LayersSize != 4096 || len(legacy.Images) != 1 {
		t.Errorf("legacy body %s", body)
	}
}

func TestEvents(t *testing.T) {
	bus := events.New(100, 100)
	rt, srv := newTestRouter(t, Params{Events: bus})
	bus.Log(eventtypes.ContainerEventType, eventtypes.ActionStart, eventtypes.Actor{ID: "c1", Attributes: map[string]string{"image": "busybox"}})
	bus.Log(eventtypes.DaemonEventType, eventtypes.ActionReload, eventtypes.Actor{ID: "d1"})
	since := strconv.FormatInt(time.Now().Add(-time.Minute).Unix(), 10)
	// until after the events but already past: the stream ends at once.
	now := time.Now()
	until := fmt.Sprintf("%d.%09d", now.Unix(), now.Nanosecond())
	later := strconv.FormatInt(time.Now().Add(time.Minute).Unix(), 10)

	t.Run("bounded", func(t *testing.T) {
		resp, body := get(t, srv, "GET", "/v1.51/events?since="+since+"&until="+until+`&filters={"type":{"container":true}}`)
		if resp.StatusCode != 200 {
			t.Fatalf("status %d: %s", resp.StatusCode, body)
		}
		lines := strings.Split(strings.TrimSpace(string(body)), "\n")
		if len(lines) != 1 {
			t.Fatalf("%d events, want 1: %s", len(lines), body)
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(lines[0]), &m); err != nil {
			t.Fatal(err)
		}
		// API < 1.52 gets the legacy fields.
		if m["status"] != "start" || m["id"] != "c1" || m["from"] != "busybox" || m["Type"] != "container" {
			t.Errorf("event %v", m)
		}
	})
	t.Run("errors", func(t *testing.T) {
		for _, q := range []string{"since=abc", "since=" + later + "&until=" + until, `filters={"nosuch":{"x":true}}`, "filters=notjson"} {
			resp, body := get(t, srv, "GET", "/events?"+q)
			if resp.StatusCode != 400 {
				t.Errorf("%s: status %d, want 400: %s", q, resp.StatusCode, body)
			}
		}
	})
	t.Run("live", func(t *testing.T) {
		req, _ := http.NewRequest("GET", srv.URL+"/events", nil)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		resp, err := srv.Client().Do(req.WithContext(ctx))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		// The handler subscribes before it sends the header, so the
		// stream is live once Do has returned.
		if n := rt.listeners.Load(); n != 1 {
			t.Fatalf("%d event listeners, want 1", n)
		}
		bus.Log(eventtypes.ImageEventType, eventtypes.ActionPull, eventtypes.Actor{ID: "busybox:latest"})
		line, err := bufio.NewReader(resp.Body).ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		var m eventtypes.Message
		if err := json.Unmarshal([]byte(line), &m); err != nil || m.Action != eventtypes.ActionPull {
			t.Errorf("live event %s (%v)", line, err)
		}
		if strings.Contains(line, `"status"`) {
			t.Errorf("legacy fields sent to API 1.56: %s", line)
		}
	})
}

func TestDebugStartup(t *testing.T) {
	mod := pipeline.Module("toy", pipeline.Stage{Step: "1", Name: "one", Ctor: func() int { return 1 }})
	g, err := pipeline.NewGraph([]pipeline.Mod{mod})
	if err != nil {
		t.Fatal(err)
	}
	rec := pipeline.NewRecorder(g, zap.NewNop())
	srv := serve(t, &config.Config{}, NewDebug(DebugParams{Recorder: rec, Graph: g}).Routes)
	resp, body := get(t, srv, "GET", "/debug/startup")
	var rep pipeline.Report
	if resp.StatusCode != 200 || json.Unmarshal(body, &rep) != nil || len(rep.Stages) != 1 || rep.Stages[0].ID != "1 one" {
		t.Errorf("json: %d %s", resp.StatusCode, body)
	}
	resp, body = get(t, srv, "GET", "/debug/startup?format=dot")
	if resp.StatusCode != 200 || !strings.HasPrefix(string(body), "digraph") || !strings.Contains(string(body), "1 one") {
		t.Errorf("dot: %d %s", resp.StatusCode, body)
	}
	if resp, _ := get(t, srv, "GET", "/debug/startup?format=svg"); resp.StatusCode != 400 {
		t.Errorf("format=svg: %d, want 400", resp.StatusCode)
	}
}
