package main

import (
	"slices"
	"testing"

	"github.com/wharfd/wharfd/modules/config"
)

// readOnlyStages touch nothing on the host (they read files, flags,
// sysfs or routes, or only compute), so they may run before the pidfile.
var readOnlyStages = []string{
	"1.1 flags", "2.1 config", "3.2 verify-settings", "reload",
	"host-paths", "3.4 root-check", "pidfile", "systemd-notify", "3.12 selinux",
	"3.1 mtu", "3.3 bridge-mode", "3.21 advertise",
	"4 middlewares", "5 debug",
}

// TestStagesThatTouchTheHostFollowThePidfile: ordering is only by types
// (DESIGN §1), so every stage that creates a file, a mount, a link or a
// rule must need, directly or not, the pidfile stage's value, which
// itself needs 3.4 root-check: a second daemon or a non-root one is
// refused before anything is touched.
func TestStagesThatTouchTheHostFollowThePidfile(t *testing.T) {
	flags, err := config.ParseFlags(nil)
	if err != nil {
		t.Fatal(err)
	}
	g, err := bootGraph(flags)
	if err != nil {
		t.Fatal(err)
	}
	after := g.Dependents("pidfile")
	if !slices.Contains(g.Dependents("3.4 root-check"), "pidfile") {
		t.Error("pidfile does not need 3.4 root-check")
	}
	for _, n := range g.Nodes {
		id := n.ID()
		if slices.Contains(readOnlyStages, id) {
			continue
		}
		if !slices.Contains(after, id) {
			t.Errorf("stage %s does not need the pidfile (directly or through another stage); "+
				"take a host value (host.Pidfile, host.DataRoot, host.ExecRoot) or, if it touches nothing, add it to readOnlyStages", id)
		}
	}
}
