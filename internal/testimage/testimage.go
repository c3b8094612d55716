// Package testimage builds test images in tests: a root filesystem tar
// around Debian's busybox-static (/bin/busybox), docker-archives and OCI
// archives with fixed configs (so their image IDs are deterministic),
// crafted tars for the bad-input cases, and large generated archives for
// benchmarks. Nothing here touches the network.
package testimage

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"runtime"
	"testing"
	"time"
)

// BusyboxPath is where Debian's busybox-static installs the binary.
const BusyboxPath = "/bin/busybox"

// Epoch is the modification time of every generated entry and the
// creation time of generated configs, so archives are byte-identical
// between runs.
var Epoch = time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)

// Entry is one entry of a crafted tar.
type Entry struct {
	// Name is the entry's path as written, unchecked ("../x" included).
	Name string
	// Type is the tar type flag; 0 is a regular file.
	Type byte
	// Mode is the permission bits; 0 means 0644 (0755 for directories).
	Mode int64
	// Linkname is the target of a symlink or hard link.
	Linkname string
	// Body is a regular file's content.
	Body []byte
}

// Tar returns the entries as a tar stream, exactly as given.
func Tar(t testing.TB, entries ...Entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		hdr := &tar.Header{Name: e.Name, Typeflag: e.Type, Mode: e.Mode, Linkname: e.Linkname, ModTime: Epoch, Format: tar.FormatPAX}
		if hdr.Typeflag == 0 {
			hdr.Typeflag = tar.TypeReg
		}
		if hdr.Mode == 0 {
			hdr.Mode = 0o644
			if hdr.Typeflag == tar.TypeDir {
				hdr.Mode = 0o755
			}
		}
		if hdr.Typeflag == tar.TypeReg {
			hdr.Size = int64(len(e.Body))
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if hdr.Typeflag == tar.TypeReg {
			if _, err := tw.Write(e.Body); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// Gzip returns b gzip-compressed.
func Gzip(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// Busybox returns the busybox-static binary, skipping the test when it is
// not installed.
func Busybox(t testing.TB) []byte {
	t.Helper()
	b, err := os.ReadFile(BusyboxPath)
	if err != nil {
		t.Skipf("busybox-static not installed (%v): apt-get install -y busybox-static", err)
	}
	return b
}

// Applets are the busybox applets RootFS links into /bin.
var Applets = []string{"sh", "ls", "cat", "echo", "true", "false", "sleep", "env", "id", "hostname", "mkdir", "rm", "touch", "wc", "ps", "uname"}

// RootFS returns a root filesystem tar: /bin/busybox with the Applets as
// symlinks to it, and empty /etc, /tmp (1777), /proc, /sys, /dev, /root.
func RootFS(t testing.TB) []byte {
	t.Helper()
	return Tar(t, RootFSEntries(t)...)
}

// RootFSEntries are RootFS's entries, to extend with more.
func RootFSEntries(t testing.TB) []Entry {
	t.Helper()
	entries := []Entry{
		{Name: "bin/", Type: tar.TypeDir},
		{Name: "bin/busybox", Mode: 0o755, Body: Busybox(t)},
	}
	for _, a := range Applets {
		entries = append(entries, Entry{Name: "bin/" + a, Type: tar.TypeSymlink, Linkname: "busybox", Mode: 0o777})
	}
	for _, d := range []string{"etc/", "proc/", "sys/", "dev/", "root/"} {
		entries = append(entries, Entry{Name: d, Type: tar.TypeDir})
	}
	return append(entries, Entry{Name: "tmp/", Type: tar.TypeDir, Mode: 0o1777})
}

// Config is an image config as test archives carry it.
type Config struct {
	// Cmd, Env, Labels, WorkingDir go into the config's "config".
	Cmd        []string
	Env        []string
	Labels     map[string]string
	WorkingDir string
	// Created is the creation time; zero means Epoch.
	Created time.Time
	// Arch is the architecture; "" means HostArch.
	Arch string
}

// Image is a generated image: its layers (uncompressed tars) and config.
type Image struct {
	// Layers are the layer tars, base first.
	Layers [][]byte
	// Config is the config JSON exactly as archived.
	Config []byte
	// Tags are the image's names in the archive ("busybox:latest").
	Tags []string
}

// ID returns the image's ID, "sha256:" + the config's digest.
func (img Image) ID() string { return "sha256:" + sha(img.Config) }

// NewImage returns an image of the given layers with a config made from
// c, deterministic for the same input.
func NewImage(t testing.TB, c Config, tags []string, layers ...[]byte) Image {
	t.Helper()
	created := c.Created
	if created.IsZero() {
		created = Epoch
	}
	arch := c.Arch
	if arch == "" {
		arch = HostArch()
	}
	diffIDs := make([]string, len(layers))
	history := make([]map[string]any, len(layers))
	for i, l := range layers {
		diffIDs[i] = "sha256:" + sha(l)
		history[i] = map[string]any{"created": created, "created_by": fmt.Sprintf("testimage layer %d", i)}
	}
	cfg := map[string]any{"Env": c.Env}
	if c.Cmd != nil {
		cfg["Cmd"] = c.Cmd
	}
	if c.Labels != nil {
		cfg["Labels"] = c.Labels
	}
	if c.WorkingDir != "" {
		cfg["WorkingDir"] = c.WorkingDir
	}
	b, err := json.Marshal(map[string]any{
		"architecture": arch,
		"os":           "linux",
		"created":      created,
		"config":       cfg,
		"rootfs":       map[string]any{"type": "layers", "diff_ids": diffIDs},
		"history":      history,
	})
	if err != nil {
		t.Fatal(err)
	}
	return Image{Layers: layers, Config: b, Tags: tags}
}

// HostArch is the GOARCH-style architecture of this machine, which image
// configs carry.
func HostArch() string { return runtime.GOARCH }

// BusyboxImage returns a one-layer image of RootFS with Cmd ["sh"].
func BusyboxImage(t testing.TB, tags ...string) Image {
	t.Helper()
	return NewImage(t, Config{Cmd: []string{"sh"}, Env: []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}}, tags, RootFS(t))
}

// DockerArchive returns a docker-archive (the `docker save` format:
// manifest.json, <config digest>.json, <layer digest>/layer.tar) of the
// images. When an image has a layer twice or images share one, it is
// stored once.
func DockerArchive(t testing.TB, imgs ...Image) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := WriteDockerArchive(&buf, imgs...); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// ManifestItem is one image of a docker-archive's manifest.json.
type ManifestItem struct {
	Config   string
	RepoTags []string
	Layers   []string
}

// WriteDockerArchive writes DockerArchive's output to w.
func WriteDockerArchive(w io.Writer, imgs ...Image) error {
	tw := tar.NewWriter(w)
	written := map[string]bool{}
	var items []ManifestItem
	for _, img := range imgs {
		item := ManifestItem{Config: sha(img.Config) + ".json", RepoTags: img.Tags}
		if !written[item.Config] {
			if err := writeFile(tw, item.Config, img.Config); err != nil {
				return err
			}
			written[item.Config] = true
		}
		for _, l := range img.Layers {
			name := sha(l) + "/layer.tar"
			item.Layers = append(item.Layers, name)
			if written[name] {
				continue
			}
			if err := writeFile(tw, name, l); err != nil {
				return err
			}
			written[name] = true
		}
		items = append(items, item)
	}
	b, err := json.Marshal(items)
	if err != nil {
		return err
	}
	if err := writeFile(tw, "manifest.json", b); err != nil {
		return err
	}
	return tw.Close()
}

// RawDockerArchive returns a docker-archive with the manifest items as
// given and the files given by name, for archives that lie (a manifest
// naming a missing layer).
func RawDockerArchive(t testing.TB, items []ManifestItem, files map[string][]byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	b, err := json.Marshal(items)
	if err != nil {
		t.Fatal(err)
	}
	if err := writeFile(tw, "manifest.json", b); err != nil {
		t.Fatal(err)
	}
	for name, body := range files {
		if err := writeFile(tw, name, body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// OCIArchive returns an OCI image layout tar (oci-layout, index.json,
// blobs/sha256/…) of the image, uncompressed layers, named by the
// org.opencontainers.image.ref.name annotation refName when not "".
func OCIArchive(t testing.TB, img Image, refName string) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	blobs := map[string][]byte{}
	var layers []map[string]any
	for _, l := range img.Layers {
		blobs[sha(l)] = l
		layers = append(layers, map[string]any{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": "sha256:" + sha(l), "size": len(l)})
	}
	blobs[sha(img.Config)] = img.Config
	man, err := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     "application/vnd.oci.image.manifest.v1+json",
		"config":        map[string]any{"mediaType": "application/vnd.oci.image.config.v1+json", "digest": "sha256:" + sha(img.Config), "size": len(img.Config)},
		"layers":        layers,
	})
	if err != nil {
		t.Fatal(err)
	}
	blobs[sha(man)] = man
	desc := map[string]any{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "sha256:" + sha(man), "size": len(man)}
	if refName != "" {
		desc["annotations"] = map[string]string{"org.opencontainers.image.ref.name": refName}
	}
	index, err := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": []any{desc}})
	if err != nil {
		t.Fatal(err)
	}
	files := []struct {
		name string
		body []byte
	}{{"oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`)}, {"index.json", index}}
	for _, f := range files {
		if err := writeFile(tw, f.name, f.body); err != nil {
			t.Fatal(err)
		}
	}
	for d, b := range blobs {
		if err := writeFile(tw, "blobs/sha256/"+d, b); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// RandomLayer returns a layer tar of files of random bytes totalling about
// size bytes (files of at most 16 MiB), seeded so the same seed gives the
// same layer.
func RandomLayer(t testing.TB, size int64, seed uint64) []byte {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	var entries []Entry
	for i := 0; size > 0; i++ {
		n := min(size, 16<<20)
		body := make([]byte, n)
		for j := 0; j+8 <= len(body); j += 8 {
			v := rng.Uint64()
			for k := 0; k < 8; k++ {
				body[j+k] = byte(v >> (8 * k))
			}
		}
		entries = append(entries, Entry{Name: fmt.Sprintf("data/%d-%d.bin", seed, i), Body: body})
		size -= n
	}
	return Tar(t, entries...)
}

func writeFile(tw *tar.Writer, name string, body []byte) error {
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body)), ModTime: Epoch, Typeflag: tar.TypeReg}); err != nil {
		return err
	}
	_, err := tw.Write(body)
	return err
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
