package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
)

// startDaemonNetNS is startDaemon, which now always isolates the daemon's
// network; it skips where namespaces cannot be had.
func startDaemonNetNS(t *testing.T, dir string, extra ...string) (*exec.Cmd, *bufio.Scanner) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: the daemon runs in a network namespace of its own")
	}
	return startDaemon(t, dir, extra...)
}

// dockerCLI runs the docker CLI against the daemon of dir.
func dockerCLI(t *testing.T, dir string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	stdout, stderr, code := runDocker(t, dir, nil, args...)
	if code != 0 {
		err = fmt.Errorf("docker %v: exit status %d", args, code)
	}
	return stdout, stderr, err
}

// daemonLinks lists the links in the daemon's network namespace.
func daemonLinks(t *testing.T, pid int) map[string]string {
	t.Helper()
	return linksAt(t, fmt.Sprintf("/proc/%d/ns/net", pid))
}

func TestNetworkCLI(t *testing.T) {
	if _, err := exec.LookPath("docker"); err != nil {
		t.Skip("docker CLI not installed")
	}
	dir := t.TempDir()
	writeConfig(t, dir, `{}`)
	cmd, log := startDaemonNetNS(t, dir, "--default-address-pool", "base=10.140.0.0/16,size=24")
	waitLine(t, log, "boot complete")
	go func() {
		for log.Scan() {
		}
	}()
	pid := cmd.Process.Pid
	if daemonLinks(t, pid)["docker0"] != "bridge" {
		t.Errorf("default bridge docker0 missing in the daemon's namespace")
	}

	run := func(args ...string) string {
		t.Helper()
		out, errOut, err := dockerCLI(t, dir, args...)
		if err != nil {
			t.Fatalf("docker %s: %v\n%s%s", strings.Join(args, " "), err, out, errOut)
		}
		return out
	}
	fail := func(want string, args ...string) {
		t.Helper()
		out, errOut, err := dockerCLI(t, dir, args...)
		if err == nil || !strings.Contains(errOut, want) {
			t.Errorf("docker %s: err %v, stderr %q; want failure with %q (stdout %q)", strings.Join(args, " "), err, errOut, want, out)
		}
	}

	id := strings.TrimSpace(run("network", "create", "--subnet", "10.150.0.0/24", "--gateway", "10.150.0.254",
		"--label", "e2e=yes", "-o", "com.docker.network.bridge.name=wh-e2e", "e2enet"))
	if len(id) != 64 {
		t.Fatalf("network create printed %q, want an ID", id)
	}
	if daemonLinks(t, pid)["wh-e2e"] != "bridge" {
		t.Error("bridge wh-e2e missing after network create")
	}
	ls := run("network", "ls")
	for _, want := range []string{"bridge", "host", "none", "e2enet", id[:12]} {
		if !strings.Contains(ls, want) {
			t.Errorf("network ls lacks %q:\n%s", want, ls)
		}
	}
	if got := run("network", "ls", "--filter", "label=e2e=yes", "--format", "{{.Name}}"); strings.TrimSpace(got) != "e2enet" {
		t.Errorf("network ls --filter label: %q", got)
	}
	var inspect []struct {
		Name   string
		ID     string `json:"Id"`
		Driver string
		IPAM   struct {
			Config []struct{ Subnet, Gateway string }
		}
		Labels map[string]string
	}
	if err := json.Unmarshal([]byte(run("network", "inspect", "e2enet")), &inspect); err != nil {
		t.Fatal(err)
	}
	if len(inspect) != 1 || inspect[0].ID != id || inspect[0].Driver != "bridge" || len(inspect[0].IPAM.Config) != 1 ||
		inspect[0].IPAM.Config[0].Subnet != "10.150.0.0/24" || inspect[0].IPAM.Config[0].Gateway != "10.150.0.254" || inspect[0].Labels["e2e"] != "yes" {
		t.Errorf("network inspect: %+v", inspect)
	}
	if got := run("network", "inspect", "-f", "{{(index .IPAM.Config 0).Subnet}}", "bridge"); strings.TrimSpace(got) != "10.140.0.0/24" {
		t.Errorf("default bridge subnet %q, want the first of --default-address-pool", got)
	}

	fail("network with name e2enet already exists", "network", "create", "e2enet")
	fail("Pool overlaps", "network", "create", "--subnet", "10.150.0.0/25", "overlap")
	// The CLI refuses a gateway outside the subnet itself; the API's own
	// 400 is tested in the router's tests.
	fail("no matching subnet for gateway", "network", "create", "--subnet", "10.151.0.0/24", "--gateway", "10.152.0.1", "gw")
	fail("invalid subnet", "network", "create", "--subnet", "10.151.0.7/24", "notmasked")
	fail("bridge is a pre-defined network and cannot be removed", "network", "rm", "bridge")
	fail("No such container: nosuch", "network", "connect", "e2enet", "nosuch")
	fail("network nosuch not found", "network", "inspect", "nosuch")

	run("network", "rm", "e2enet")
	if _, ok := daemonLinks(t, pid)["wh-e2e"]; ok {
		t.Error("bridge wh-e2e left after network rm")
	}
	run("network", "create", "p1")
	if out := run("network", "prune", "-f"); !strings.Contains(out, "p1") {
		t.Errorf("network prune printed %q, want p1", out)
	}
	if out := run("network", "ls", "--format", "{{.Name}}"); strings.Contains(out, "p1") || strings.Contains(out, "e2enet") {
		t.Errorf("networks left: %s", out)
	}
	for name, typ := range daemonLinks(t, pid) {
		if typ == "veth" || (typ == "bridge" && name != "docker0") {
			t.Errorf("%s %s left in the daemon's namespace", typ, name)
		}
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("exit after SIGTERM: %v", err)
	}
}
