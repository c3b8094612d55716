package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/wharfd/wharfd/internal/testimage"
)

// imageDaemon is a daemon on a directory of its own, restartable.
type imageDaemon struct {
	t   *testing.T
	dir string
	cmd *exec.Cmd
}

// start starts the daemon (in a network namespace of its own, so the host's
// links stay untouched) and waits for its API.
func (d *imageDaemon) start() {
	d.t.Helper()
	d.cmd = serveDaemon(d.t, d.dir)
}

// restart stops the daemon cleanly and starts it again on the same data.
func (d *imageDaemon) restart() {
	d.t.Helper()
	stopDaemon(d.t, d.cmd)
	d.start()
}

// docker runs the CLI with stdin and returns stdout, stderr and the exit
// code.
func (d *imageDaemon) docker(stdin []byte, args ...string) (string, string, int) {
	d.t.Helper()
	return runDocker(d.t, d.dir, stdin, args...)
}

// ok runs the CLI, fails the test unless it succeeds, and returns stdout
// trimmed.
func (d *imageDaemon) ok(args ...string) string {
	d.t.Helper()
	out, errOut, code := d.docker(nil, args...)
	if code != 0 {
		d.t.Fatalf("docker %v: exit %d\n%s%s", args, code, out, errOut)
	}
	return strings.TrimSpace(out)
}

// fails runs the CLI with stdin, expects it to fail, and returns stderr.
func (d *imageDaemon) fails(stdin []byte, args ...string) string {
	d.t.Helper()
	out, errOut, code := d.docker(stdin, args...)
	if code == 0 {
		d.t.Fatalf("docker %v succeeded: %s", args, out)
	}
	return errOut
}

// imageLeftovers lists what the store's temporary directory holds.
func (d *imageDaemon) imageLeftovers() []string {
	d.t.Helper()
	entries, err := os.ReadDir(filepath.Join(d.dir, "root", "tmp", "images"))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		d.t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func TestImageCLI(t *testing.T) {
	if _, err := exec.LookPath("docker"); err != nil {
		t.Skip("docker CLI not installed")
	}
	dir := t.TempDir()
	writeConfig(t, dir, `{}`)
	d := &imageDaemon{t: t, dir: dir}
	d.start()
	rootfs := filepath.Join(dir, "rootfs.tar")
	if err := os.WriteFile(rootfs, testimage.RootFS(t), 0o644); err != nil {
		t.Fatal(err)
	}

	// docker import with --change and a message.
	out, errOut, code := d.docker(nil, "import", "--change", `CMD ["sh"]`, "--change", "ENV A=b", "--change", "LABEL team=core",
		"--change", "WORKDIR /srv", "-m", "first import", rootfs, "bb:1")
	if code != 0 {
		t.Fatalf("docker import: exit %d\n%s%s", code, out, errOut)
	}
	importedID := strings.TrimSpace(out)
	if !regexp.MustCompile(`^sha256:[0-9a-f]{64}$`).MatchString(importedID) {
		t.Fatalf("docker import printed %q, want the image ID", importedID)
	}

	// docker images: columns and sizes.
	d.restart()
	out = d.ok("images")
	lines := strings.Split(out, "\n")
	if !regexp.MustCompile(`^REPOSITORY\s+TAG\s+IMAGE ID\s+CREATED\s+SIZE$`).MatchString(lines[0]) {
		t.Errorf("docker images header %q", lines[0])
	}
	if len(lines) != 2 || !regexp.MustCompile(`^bb\s+1\s+`+importedID[7:19]+`\s+.*(second|minute).* ago\s+[0-9.]+MB$`).MatchString(lines[1]) {
		t.Errorf("docker images:\n%s", out)
	}

	// docker inspect and history find it after a restart.
	got := d.ok("image", "inspect", "--format", `{{.Id}} {{json .Config.Cmd}} {{json .Config.Env}} {{.Config.Labels.team}} {{.Config.WorkingDir}} {{.Comment}} {{.Os}}`, "bb:1")
	if want := importedID + ` ["sh"] ["A=b"] core /srv first import linux`; got != want {
		t.Errorf("inspect: %q, want %q", got, want)
	}
	if got := d.ok("history", "--format", "{{.ID}} {{.Comment}}", "bb:1"); got != importedID[7:19]+" first import" {
		t.Errorf("history: %q", got)
	}

	// docker tag, with a registry port and slashes.
	d.ok("tag", "bb:1", "127.0.0.1:5000/team/app:1")
	d.restart()
	// One image, two tags: the CLI sorts its rows by creation time, so
	// the order of two rows of the same image is not defined.
	rows := strings.Split(d.ok("images", "--format", "{{.Repository}}:{{.Tag}}"), "\n")
	slices.Sort(rows)
	if got := strings.Join(rows, "\n"); got != "127.0.0.1:5000/team/app:1\nbb:1" {
		t.Errorf("images after tag: %q", got)
	}
	if got := d.ok("image", "inspect", "--format", "{{.Id}}", "127.0.0.1:5000/team/app:1"); got != importedID {
		t.Errorf("inspect by the new tag: %s", got)
	}

	// docker load of an archive built here: its ID is its config digest.
	img := testimage.BusyboxImage(t, "busybox:latest")
	out, errOut, code = d.docker(testimage.Gzip(t, testimage.DockerArchive(t, img)), "load")
	if code != 0 || !strings.Contains(out, "Loaded image: busybox:latest") {
		t.Fatalf("docker load: exit %d\n%s%s", code, out, errOut)
	}
	if got := d.ok("image", "inspect", "--format", "{{.Id}}", "busybox"); got != img.ID() {
		t.Errorf("loaded image ID %s, want the config digest %s", got, img.ID())
	}

	// docker save | docker load keeps IDs and tags.
	archive, errOut, code := d.docker(nil, "save", "busybox", "bb:1")
	if code != 0 {
		t.Fatalf("docker save: exit %d\n%s", code, errOut)
	}

	// docker rmi: untag first, then delete.
	if got := d.ok("rmi", "bb:1"); got != "Untagged: bb:1" {
		t.Errorf("rmi bb:1: %q", got)
	}
	got = d.ok("rmi", "127.0.0.1:5000/team/app:1")
	if !strings.HasPrefix(got, "Untagged: 127.0.0.1:5000/team/app:1\nDeleted: "+importedID) {
		t.Errorf("rmi of the last tag: %q", got)
	}
	d.ok("rmi", "busybox")
	d.restart()
	if got := d.ok("images", "-aq"); got != "" {
		t.Fatalf("images left after rmi: %q", got)
	}
	out, errOut, code = d.docker([]byte(archive), "load")
	if code != 0 || !strings.Contains(out, "Loaded image: busybox:latest") || !strings.Contains(out, "Loaded image: bb:1") {
		t.Fatalf("load of the saved archive: exit %d\n%s%s", code, out, errOut)
	}
	d.restart()
	if got := d.ok("image", "inspect", "--format", "{{.Id}}", "busybox", "bb:1"); got != img.ID()+"\n"+importedID {
		t.Errorf("IDs after save and load: %q", got)
	}

	// docker image prune: dangling first, then everything unused.
	dangling := d.ok("import", rootfs)
	got = d.ok("image", "prune", "-f")
	if !strings.Contains(got, "deleted: "+dangling) || !strings.Contains(got, "Total reclaimed space") {
		t.Errorf("prune: %q", got)
	}
	if got := d.ok("images", "-q"); strings.Count(got, "\n") != 1 {
		t.Errorf("after prune: %q, want the two tagged images", got)
	}
	d.ok("image", "prune", "-af")
	if got := d.ok("images", "-aq"); got != "" {
		t.Errorf("after prune -a: %q", got)
	}

	// Bad input: clear errors, nothing left behind.
	good := testimage.DockerArchive(t, img)
	gz := testimage.Gzip(t, good)
	corrupt := bytes.Clone(gz)
	corrupt[len(corrupt)/2] ^= 0xff
	bad := []struct {
		name    string
		give    []byte
		wantErr string
	}{
		{name: "not a tar", give: []byte(strings.Repeat("not a tar\n", 200)), wantErr: "invalid archive"},
		{name: "truncated", give: good[:len(good)/2], wantErr: "truncated"},
		{name: "corrupt gzip", give: corrupt, wantErr: "invalid archive"},
		{name: "missing layer", give: testimage.RawDockerArchive(t,
			[]testimage.ManifestItem{{Config: "c.json", RepoTags: []string{"broken:1"}, Layers: []string{"gone/layer.tar"}}},
			map[string][]byte{"c.json": img.Config}), wantErr: `manifest.json names "gone/layer.tar"`},
	}
	for _, tt := range bad {
		t.Run("load "+tt.name, func(t *testing.T) {
			if errOut := d.fails(tt.give, "load"); !strings.Contains(errOut, tt.wantErr) {
				t.Errorf("docker load: %q, want %q", errOut, tt.wantErr)
			}
		})
	}
	if errOut := d.fails(nil, "image", "inspect", "nosuch"); !strings.Contains(errOut, "No such image: nosuch") {
		t.Errorf("inspect nosuch: %q", errOut)
	}
	if errOut := d.fails(nil, "rmi", "nosuch:1"); !strings.Contains(errOut, "No such image: nosuch:1") {
		t.Errorf("rmi nosuch: %q", errOut)
	}
	if got := d.ok("images", "-aq"); got != "" {
		t.Errorf("images after failed loads: %q", got)
	}
	if left := d.imageLeftovers(); len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
	stopDaemon(t, d.cmd)
	if b, err := os.ReadFile("/proc/self/mountinfo"); err == nil && strings.Contains(string(b), dir) {
		t.Errorf("mounts left under %s after stop", dir)
	}
}
