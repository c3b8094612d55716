package network_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"
	"go.uber.org/zap"

	"github.com/wharfd/wharfd/modules/config"
	"github.com/wharfd/wharfd/modules/network"
	"github.com/wharfd/wharfd/pipeline"
)

func TestModule(t *testing.T) {
	for _, k := range []string{"DOCKER_DRIVER", "DOCKER_TMPDIR", "DOCKER_MIN_API_VERSION"} {
		t.Setenv(k, "")
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "daemon.json")
	if err := os.WriteFile(path, []byte(`{"mtu":9000,"bridge":"none","iptables":false,"ip-forward":false}`), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := config.ParseFlags([]string{"--config-file", path, "--data-root", filepath.Join(dir, "data"), "--exec-root", filepath.Join(dir, "exec"), "--pidfile", filepath.Join(dir, "pid")})
	if err != nil {
		t.Fatal(err)
	}
	// No default bridge, no packet filter, no forwarding: the controller
	// only writes its files, the host's network is left alone.
	var (
		mtu  network.MTU
		mode network.BridgeMode
		ctrl *network.Controller
	)
	app := fxtest.New(t,
		fx.NopLogger,
		fx.Supply(f, zap.NewNop()),
		config.Module.Fx(nil),
		network.Module.Fx(nil),
		fx.Populate(&mtu, &mode, &ctrl),
	)
	app.RequireStart()
	var names []string
	for _, n := range ctrl.List(context.Background()) {
		names = append(names, n.Name)
	}
	app.RequireStop()
	if mtu != 9000 || !mode.Disabled {
		t.Errorf("MTU = %d, BridgeMode = %+v", mtu, mode)
	}
	if len(names) != 2 || names[0] == "bridge" || names[1] == "bridge" {
		t.Errorf("networks %v, want host and none only (--bridge=none)", names)
	}
	if _, err := os.Stat(filepath.Join(dir, "data", "network")); err != nil {
		t.Errorf("network state directory: %v", err)
	}
}

func TestGraph(t *testing.T) {
	g, err := pipeline.NewGraph([]pipeline.Mod{config.Module, network.Module}, &config.Flags{}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"3.1 mtu", "3.3 bridge-mode", "3.21 advertise", "3.22 netcontroller"} {
		n, ok := g.Node(id)
		if !ok || n.Module() != "network" {
			t.Errorf("stage %s missing or not in module network", id)
		}
	}
	deps := g.Dependents("2.1 config")
	for _, id := range []string{"3.1 mtu", "3.3 bridge-mode"} {
		found := false
		for _, d := range deps {
			found = found || d == id
		}
		if !found {
			t.Errorf("%s does not depend on 2.1 config: %v", id, deps)
		}
	}
}
