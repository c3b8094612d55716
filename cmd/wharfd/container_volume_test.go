package main

import (
	"archive/tar"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/wharfd/wharfd/internal/testimage"
)

// volumeTestImage is voltest:latest: busybox with the image directory
// /srv/data (mode 0750, holding seed.txt) declared a VOLUME, and the
// file /srv/file.
func volumeTestImage(t *testing.T) testimage.Image {
	t.Helper()
	entries := append(testimage.RootFSEntries(t),
		testimage.Entry{Name: "srv/", Type: tar.TypeDir},
		testimage.Entry{Name: "srv/data/", Type: tar.TypeDir, Mode: 0o750},
		testimage.Entry{Name: "srv/data/seed.txt", Body: []byte("from the image\n")},
		testimage.Entry{Name: "srv/file", Body: []byte("a file\n")},
	)
	img := testimage.NewImage(t, testimage.Config{Cmd: []string{"sh"}, Env: []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}},
		[]string{"voltest:latest"}, testimage.Tar(t, entries...))
	// testimage.Config has no VOLUME: add it to the config as archived.
	var cfg map[string]any
	if err := json.Unmarshal(img.Config, &cfg); err != nil {
		t.Fatal(err)
	}
	cfg["config"].(map[string]any)["Volumes"] = map[string]any{"/srv/data": map[string]any{}}
	b, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	img.Config = b
	return img
}

// newVolumeDaemon is newCtrDaemon with voltest:latest loaded too; it
// skips unless root.
func newVolumeDaemon(t *testing.T) *ctrDaemon {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: the daemon refuses to start otherwise")
	}
	d := newCtrDaemon(t)
	if _, errOut, code := d.docker(testimage.DockerArchive(t, volumeTestImage(t)), "load"); code != 0 {
		t.Fatalf("docker load voltest: %s", errOut)
	}
	return d
}

// finish stops the daemon and checks that nothing is left mounted under
// the test's directories: the daemon's, and extra (bind sources).
func (d *ctrDaemon) finish(extra ...string) {
	d.t.Helper()
	d.stop()
	mi, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		d.t.Fatal(err)
	}
	for _, line := range strings.Split(string(mi), "\n") {
		for _, dir := range append([]string{d.dir}, extra...) {
			if strings.Contains(line, dir) {
				d.t.Errorf("mount left behind: %s", line)
			}
		}
	}
}

// volumeEvents returns the volume events since since, one line each:
// "action name destination read/write".
func (d *ctrDaemon) volumeEvents(since time.Time) []string {
	d.t.Helper()
	out := d.ok("events", "--since", fmt.Sprint(since.Unix()), "--until", fmt.Sprint(time.Now().Add(time.Second).Unix()),
		"--filter", "type=volume", "--format", `{{.Action}} {{.Actor.ID}} {{index .Actor.Attributes "destination"}} {{index .Actor.Attributes "read/write"}}`)
	var lines []string
	for _, l := range strings.Split(out, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	return lines
}

var hexName = regexp.MustCompile(`^[0-9a-f]{64}$`)

func TestContainerVolumeNamed(t *testing.T) {
	d := newVolumeDaemon(t)
	since := time.Now().Add(-time.Second)

	// Data written by one container is read by the next.
	d.ok("run", "--rm", "-v", "data:/data", "busybox", "sh", "-c", "echo hello > /data/f")
	if got := d.ok("run", "--rm", "-v", "data:/data", "busybox", "cat", "/data/f"); got != "hello" {
		t.Errorf("second container read %q, want hello", got)
	}
	if got := d.ok("volume", "ls", "-q"); got != "data" {
		t.Errorf("volumes after two --rm runs: %q, want the named volume kept", got)
	}
	events := d.volumeEvents(since)
	want := []string{"create data", "mount data /data true", "unmount data", "mount data /data true", "unmount data"}
	if strings.Join(events, "\n") != strings.Join(want, "\n") {
		t.Errorf("volume events:\n%s\nwant\n%s", strings.Join(events, "\n"), strings.Join(want, "\n"))
	}

	// :ro is enforced.
	_, errOut, code := d.docker(nil, "run", "--rm", "-v", "data:/data:ro", "busybox", "sh", "-c", "echo x > /data/g")
	if code == 0 || !strings.Contains(errOut, "Read-only file system") {
		t.Errorf("write to a :ro volume: exit %d, stderr %q; want EROFS", code, errOut)
	}

	// Inspect shows the mount as dockerd.
	id := d.ok("create", "--name", "holder", "-v", "data:/data", "busybox", "true")
	var mounts []map[string]any
	if err := json.Unmarshal([]byte(d.ok("inspect", "-f", "{{json .Mounts}}", "holder")), &mounts); err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(d.dir, "root", "volumes", "data", "_data")
	wantMount := map[string]any{"Type": "volume", "Name": "data", "Source": src, "Destination": "/data", "Driver": "local", "Mode": "z", "RW": true, "Propagation": ""}
	if len(mounts) != 1 || fmt.Sprint(mounts[0]) != fmt.Sprint(wantMount) {
		t.Errorf("inspect Mounts = %v, want [%v]", mounts, wantMount)
	}

	// A volume in use cannot be removed, even with -f; it survives.
	errOut = d.fails(1, "volume", "rm", "-f", "data")
	if !strings.Contains(errOut, "remove data: volume is in use - ["+id+"]") {
		t.Errorf("rm of a volume in use: %q", errOut)
	}
	if code, body := d.api(http.MethodDelete, "/volumes/data", ""); code != http.StatusConflict {
		t.Errorf("DELETE /volumes/data = %d %s, want 409", code, body)
	}
	if got := d.ok("volume", "ls", "-q", "--filter", "dangling=false"); got != "data" {
		t.Errorf("volumes in use: %q", got)
	}
	if got := d.ok("system", "df", "--format", "{{.Type}} {{.Active}}"); !strings.Contains(got, "Local Volumes 1") {
		t.Errorf("system df does not count the volume active:\n%s", got)
	}

	// Volumes, their data and their references survive a daemon restart.
	d.stop()
	d.start()
	if got := d.ok("run", "--rm", "-v", "data:/data", "busybox", "cat", "/data/f"); got != "hello" {
		t.Errorf("after a restart the volume holds %q", got)
	}
	errOut = d.fails(1, "volume", "rm", "data")
	if !strings.Contains(errOut, "volume is in use - ["+id+"]") {
		t.Errorf("rm of a volume in use after a restart: %q", errOut)
	}
	d.ok("rm", "-v", "holder")
	if got := d.ok("volume", "ls", "-q"); got != "data" {
		t.Errorf("rm -v removed a named volume: volumes %q", got)
	}
	d.ok("volume", "rm", "data")
	d.finish()
}

func TestContainerVolumeCopyUp(t *testing.T) {
	d := newVolumeDaemon(t)

	// A fresh named volume over a non-empty image directory is populated.
	if got := d.ok("run", "--rm", "-v", "fresh:/srv/data", "voltest", "cat", "/srv/data/seed.txt"); got != "from the image" {
		t.Errorf("fresh volume over /srv/data shows %q", got)
	}
	data := filepath.Join(d.dir, "root", "volumes", "fresh", "_data")
	if b, err := os.ReadFile(filepath.Join(data, "seed.txt")); string(b) != "from the image\n" {
		t.Errorf("volume data: %q, %v", b, err)
	}
	if fi, err := os.Stat(data); err != nil || fi.Mode().Perm() != 0o750 {
		t.Errorf("volume data dir mode %v (%v), want the image directory's 0750", fi.Mode().Perm(), err)
	}
	// Not again once it has content; its content wins over the image's.
	d.ok("run", "--rm", "-v", "fresh:/srv/data", "voltest", "sh", "-c", "rm /srv/data/seed.txt; echo mine > /srv/data/own")
	if got := d.ok("run", "--rm", "-v", "fresh:/srv/data", "voltest", "ls", "/srv/data"); got != "own" {
		t.Errorf("volume with content after a second mount: %q", got)
	}
	// nocopy and volume-nocopy leave a new volume empty.
	if got := d.ok("run", "--rm", "-v", "nocopy:/srv/data:nocopy", "voltest", "ls", "-A", "/srv/data"); got != "" {
		t.Errorf("nocopy volume holds %q", got)
	}
	if got := d.ok("run", "--rm", "--mount", "type=volume,source=nocopy2,target=/srv/data,volume-nocopy", "voltest", "ls", "-A", "/srv/data"); got != "" {
		t.Errorf("volume-nocopy volume holds %q", got)
	}
	// A VOLUME over a file is refused at create, with nothing made.
	code, body := d.api(http.MethodPost, "/containers/create?name=overfile", `{"Image":"voltest","Volumes":{"/srv/file":{}}}`)
	if code != http.StatusBadRequest || !strings.Contains(body, "cannot mount volume over existing file, file exists") {
		t.Errorf("VOLUME over a file: %d %s", code, body)
	}
	d.ok("volume", "rm", "fresh", "nocopy", "nocopy2")

	// The image's VOLUME is an anonymous volume, populated; rm -v removes
	// it and only it.
	d.ok("volume", "create", "keep")
	d.ok("create", "--name", "img", "-v", "keep:/keep", "voltest", "cat", "/srv/data/seed.txt")
	var mounts []struct {
		Type, Name, Destination, Mode, Driver string
		RW                                    bool
	}
	if err := json.Unmarshal([]byte(d.ok("inspect", "-f", "{{json .Mounts}}", "img")), &mounts); err != nil {
		t.Fatal(err)
	}
	if len(mounts) != 2 || mounts[1].Destination != "/srv/data" || !hexName.MatchString(mounts[1].Name) ||
		mounts[1].Type != "volume" || mounts[1].Mode != "" || !mounts[1].RW || mounts[1].Driver != "local" {
		t.Fatalf("inspect Mounts = %+v, want keep at /keep and an anonymous volume at /srv/data", mounts)
	}
	anon := mounts[1].Name
	if got := d.ok("start", "-a", "img"); got != "from the image" {
		t.Errorf("image volume shows %q", got)
	}
	if got := d.ok("volume", "inspect", "-f", "{{json .Labels}}", anon); got != `{"com.docker.volume.anonymous":""}` {
		t.Errorf("anonymous volume labels %s", got)
	}
	d.ok("rm", "-v", "img")
	if got := d.ok("volume", "ls", "-q"); got != "keep" {
		t.Errorf("volumes after rm -v: %q, want keep only", got)
	}
	// Without -v the anonymous volume stays; --rm removes it.
	d.ok("create", "--name", "img2", "voltest")
	anon2 := d.ok("inspect", "-f", "{{range .Mounts}}{{.Name}}{{end}}", "img2")
	d.ok("rm", "img2")
	if got := d.ok("volume", "ls", "-q", "--filter", "dangling=true"); !strings.Contains(got, anon2) {
		t.Errorf("rm without -v removed the anonymous volume: %q", got)
	}
	d.ok("volume", "rm", anon2)
	d.ok("run", "--rm", "voltest", "true")
	if got := d.ok("volume", "ls", "-q"); got != "keep" {
		t.Errorf("volumes after run --rm: %q, want keep only", got)
	}
	d.ok("volume", "rm", "keep")
	d.finish()
}

func TestContainerBindMounts(t *testing.T) {
	d := newVolumeDaemon(t)
	host := t.TempDir()
	if err := os.WriteFile(filepath.Join(host, "in"), []byte("from the host\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	// Both ways.
	if got := d.ok("run", "--rm", "-v", host+":/h", "busybox", "sh", "-c", "cat /h/in; echo from the container > /h/out"); got != "from the host" {
		t.Errorf("container read %q", got)
	}
	if b, err := os.ReadFile(filepath.Join(host, "out")); string(b) != "from the container\n" {
		t.Errorf("host read %q, %v", b, err)
	}
	var mounts []map[string]any
	d.ok("create", "--name", "bm", "-v", host+":/h:ro", "--mount", "type=bind,source="+host+",target=/m,bind-propagation=rslave", "busybox")
	if err := json.Unmarshal([]byte(d.ok("inspect", "-f", "{{json .Mounts}}", "bm")), &mounts); err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprint([]map[string]any{
		{"Type": "bind", "Source": host, "Destination": "/h", "Mode": "ro", "RW": false, "Propagation": "rprivate"},
		{"Type": "bind", "Source": host, "Destination": "/m", "Mode": "", "RW": true, "Propagation": "rslave"},
	})
	if fmt.Sprint(mounts) != want {
		t.Errorf("inspect Mounts = %v\nwant %v", mounts, want)
	}
	d.ok("rm", "bm")

	// Read-only binds, both forms.
	for _, args := range [][]string{{"-v", host + ":/h:ro"}, {"--mount", "type=bind,source=" + host + ",target=/h,readonly"}} {
		_, errOut, code := d.docker(nil, append(append([]string{"run", "--rm"}, args...), "busybox", "sh", "-c", "echo x > /h/ro")...)
		if code == 0 || !strings.Contains(errOut, "Read-only file system") {
			t.Errorf("write to %v: exit %d, stderr %q; want EROFS", args, code, errOut)
		}
	}

	// -v creates a missing host path; --mount refuses it with a 400.
	made := filepath.Join(host, "made", "here")
	d.ok("run", "--rm", "-v", made+":/m", "busybox", "true")
	if fi, err := os.Stat(made); err != nil || !fi.IsDir() {
		t.Errorf("-v did not create the host path: %v", err)
	}
	missing := filepath.Join(host, "missing")
	errOut := d.fails(125, "run", "--rm", "--mount", "type=bind,source="+missing+",target=/m", "busybox", "true")
	if !strings.Contains(errOut, "bind source path does not exist: "+missing) {
		t.Errorf("--mount of a missing source: %q", errOut)
	}
	if _, err := os.Stat(missing); !os.IsNotExist(err) {
		t.Errorf("--mount created the missing source: %v", err)
	}

	// tmpfs with its size and mode; a volume with tmpfs options.
	out := d.ok("run", "--rm", "--mount", "type=tmpfs,target=/t,tmpfs-size=1m,tmpfs-mode=1770",
		"--mount", "type=volume,source=optvol,target=/o,volume-opt=type=tmpfs,volume-opt=device=tmpfs,volume-opt=o=size=2m",
		"busybox", "cat", "/proc/self/mounts")
	var tmpLine, optLine string
	for _, l := range strings.Split(out, "\n") {
		switch f := strings.Fields(l); {
		case len(f) > 3 && f[1] == "/t":
			tmpLine = l
		case len(f) > 3 && f[1] == "/o":
			optLine = l
		}
	}
	if !strings.Contains(tmpLine, "tmpfs") || !strings.Contains(tmpLine, "size=1024k") || !strings.Contains(tmpLine, "mode=1770") {
		t.Errorf("tmpfs mount: %q, want size=1024k and mode=1770", tmpLine)
	}
	if !strings.Contains(optLine, "tmpfs") || !strings.Contains(optLine, "size=2048k") {
		t.Errorf("volume with tmpfs options: %q, want a 2 MiB tmpfs", optLine)
	}
	// A start that fails leaves the volume's tmpfs unmounted.
	d.fails(127, "run", "--rm", "--mount", "type=volume,source=optvol,target=/o", "busybox", "/nosuch")
	optData := filepath.Join(d.dir, "root", "volumes", "optvol", "_data")
	if mi, _ := os.ReadFile("/proc/self/mountinfo"); strings.Contains(string(mi), optData) {
		t.Errorf("failed start left %s mounted", optData)
	}
	d.ok("volume", "rm", "optvol")

	// Bad specs: 400 and nothing made.
	tests := []struct {
		name    string
		give    string
		wantErr string
	}{
		{name: "relative container path", give: `{"Image":"busybox","HostConfig":{"Binds":["bad:relative"]}}`, wantErr: "invalid volume specification: 'bad:relative'"},
		{name: "tmpfs with a source", give: `{"Image":"busybox","HostConfig":{"Mounts":[{"Type":"tmpfs","Source":"ro","Target":"/t"}]}}`, wantErr: "field Source must not be specified"},
		{name: "bad tmpfs option", give: `{"Image":"busybox","HostConfig":{"Mounts":[{"Type":"tmpfs","Target":"/t","TmpfsOptions":{"Options":[["foo"]]}}]}}`, wantErr: "invalid option: foo"},
		{name: "missing bind source", give: `{"Image":"busybox","HostConfig":{"Mounts":[{"Type":"bind","Source":"` + missing + `","Target":"/t"}]}}`, wantErr: "bind source path does not exist"},
		{name: "duplicate", give: `{"Image":"busybox","HostConfig":{"Binds":["bad:/d","` + host + `:/d"]}}`, wantErr: "Duplicate mount point: /d"},
		{name: "volumes-from unknown", give: `{"Image":"busybox","HostConfig":{"VolumesFrom":["nosuch"]}}`, wantErr: "No such container: nosuch"},
		{name: "bad volume name", give: `{"Image":"busybox","HostConfig":{"Binds":["a@b:/d"]}}`, wantErr: "includes invalid characters for a local volume name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := d.api(http.MethodPost, "/containers/create", tt.give)
			if code != http.StatusBadRequest || !strings.Contains(body, tt.wantErr) {
				t.Errorf("create = %d %s, want 400 %q", code, body, tt.wantErr)
			}
		})
	}
	if got := d.ok("ps", "-aq"); got != "" {
		t.Errorf("bad creates left containers: %q", got)
	}
	if got := d.ok("volume", "ls", "-q"); got != "" {
		t.Errorf("bad creates left volumes: %q", got)
	}
	d.finish(host)
}

func TestContainerVolumesFrom(t *testing.T) {
	d := newVolumeDaemon(t)
	host := t.TempDir()
	d.ok("create", "--name", "src", "-v", "shared:/shared", "-v", host+":/h", "voltest")

	// Every mount of src: its named volume, its bind, its image volume.
	out := d.ok("run", "--rm", "--volumes-from", "src", "busybox", "sh", "-c",
		"cat /srv/data/seed.txt; echo one > /shared/f; echo two > /h/f")
	if out != "from the image" {
		t.Errorf("--volumes-from sees %q", out)
	}
	if got := d.ok("run", "--rm", "-v", "shared:/s", "busybox", "cat", "/s/f"); got != "one" {
		t.Errorf("shared volume holds %q", got)
	}
	if b, _ := os.ReadFile(filepath.Join(host, "f")); string(b) != "two\n" {
		t.Errorf("bind through --volumes-from wrote %q", b)
	}
	// :ro makes them all read-only.
	_, errOut, code := d.docker(nil, "run", "--rm", "--volumes-from", "src:ro", "busybox", "sh", "-c", "echo x > /shared/g")
	if code == 0 || !strings.Contains(errOut, "Read-only file system") {
		t.Errorf("write through --volumes-from src:ro: exit %d, stderr %q", code, errOut)
	}
	// A container using src's volumes holds them: rm -v of src keeps the
	// anonymous one while the other uses it.
	d.ok("create", "--name", "user", "--volumes-from", "src", "busybox")
	anon := d.ok("inspect", "-f", `{{range .Mounts}}{{if eq .Destination "/srv/data"}}{{.Name}}{{end}}{{end}}`, "src")
	d.ok("rm", "-v", "src")
	if got := d.ok("volume", "ls", "-q", "--filter", "dangling=false"); !strings.Contains(got, anon) || !strings.Contains(got, "shared") {
		t.Errorf("volumes still used by user: %q, want %s and shared", got, anon)
	}
	d.ok("rm", "-v", "user")
	if got := d.ok("volume", "ls", "-q"); got != "shared" {
		t.Errorf("volumes after rm -v user: %q, want shared only", got)
	}
	d.ok("volume", "rm", "shared")
	d.finish(host)
}
