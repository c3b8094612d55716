package storage

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"slices"
	"time"

	"github.com/distribution/reference"
	"github.com/moby/moby/api/types/events"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"go.podman.io/image/v5/copy"
	dockerarchive "go.podman.io/image/v5/docker/archive"
	dref "go.podman.io/image/v5/docker/reference"
	"go.podman.io/image/v5/image"
	"go.podman.io/image/v5/manifest"
	"go.podman.io/image/v5/oci/layout"
	"go.podman.io/image/v5/types"
	"go.podman.io/storage/pkg/archive"
	"go.uber.org/zap"
)

// Progress is one report of a long operation, which the image router turns
// into the JSON progress messages dockerd streams.
type Progress struct {
	// ID names what progresses: a short layer digest, or "" for the
	// operation as a whole.
	ID string
	// Action is what happens to it ("Loading layer").
	Action string
	// Current and Total are bytes done and expected (Total 0: unknown).
	Current, Total int64
	// Message, when set, is a line of output for the client ("Loaded
	// image: busybox:latest"); the other fields are then unused.
	Message string
}

// ProgressFunc receives progress reports; it is called from one goroutine
// at a time.
type ProgressFunc func(Progress)

// archiveKind is the format of an archive given to Load.
type archiveKind int

const (
	dockerArchive archiveKind = iota + 1
	ociArchive
)

// progressInterval is how often copy progress is reported.
const progressInterval = 200 * time.Millisecond

// Load is POST /images/load: it reads a docker-archive (`docker save`) or
// an OCI archive, gzip-, bzip2-, xz- or zstd-compressed or plain, stores
// its images and tags them as the archive says, reporting "Loaded image:
// <name>" (or "Loaded image ID: <id>" for an untagged image) through
// progress, and layer progress unless quiet. Every image and layer a
// failed load stored is removed again, and so are its temporary files; a
// malformed archive (not a tar, truncated, corrupt compression, a manifest
// naming a missing file) is errdefs.ErrInvalidArgument.
func (s *Images) Load(ctx context.Context, r io.Reader, quiet bool, progress ProgressFunc) (err error) {
	if progress == nil {
		progress = func(Progress) {}
	}
	file, kind, err := s.spool(r, "load-*.tar")
	if err != nil {
		return err
	}
	defer os.Remove(file)

	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	snap, err := s.snapshot()
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			s.rollback(snap)
		}
	}()

	var loaded []loadedImage
	switch kind {
	case dockerArchive:
		loaded, err = s.loadDocker(ctx, file, quiet, progress)
	default:
		loaded, err = s.loadOCI(ctx, file, quiet, progress)
	}
	if err != nil {
		return err
	}
	for _, l := range loaded {
		img, err := s.db.Get(ctx, l.id)
		if err != nil {
			return err
		}
		s.event(events.ActionLoad, img.FullID(), img.FullID(), img.Labels())
		if len(l.tags) == 0 {
			progress(Progress{Message: "Loaded image ID: " + img.FullID() + "\n"})
			continue
		}
		for _, tag := range l.tags {
			prev, err := s.refs.Tag(l.id, tag)
			if err != nil {
				return err
			}
			if prev != "" {
				progress(Progress{Message: fmt.Sprintf("The image %s already exists, renaming the old one with ID sha256:%s to empty string\n", Familiar(tag), prev)})
			}
			s.event(events.ActionTag, img.FullID(), Familiar(tag), img.Labels())
			progress(Progress{Message: "Loaded image: " + Familiar(tag) + "\n"})
		}
	}
	return nil
}

// loadedImage is an image a load stored, with the tags it is to get.
type loadedImage struct {
	id   string
	tags []reference.Named
}

// loadDocker copies every image of a docker-archive into the store.
func (s *Images) loadDocker(ctx context.Context, file string, quiet bool, progress ProgressFunc) ([]loadedImage, error) {
	rd, err := dockerarchive.NewReader(s.db.sys, file)
	if err != nil {
		return nil, invalidf("invalid docker-archive: %w", err)
	}
	defer rd.Close()
	lists, err := rd.List()
	if err != nil {
		return nil, invalidf("invalid docker-archive: %w", err)
	}
	var out []loadedImage
	for _, refs := range lists {
		var tags []reference.Named
		for _, ref := range refs {
			if named := ref.DockerReference(); named != nil {
				t, err := ParseNamed(named.String())
				if err != nil {
					return nil, err
				}
				tags = append(tags, t)
			}
		}
		id, err := s.copyIn(ctx, refs[0], quiet, progress)
		if err != nil {
			return nil, err
		}
		out = append(out, loadedImage{id: id, tags: tags})
	}
	return out, nil
}

// loadOCI copies every image of an OCI archive into the store. An image's
// name is its io.containerd.image.name annotation, else its
// org.opencontainers.image.ref.name when that is a whole reference (a bare
// tag names nothing), as dockerd reads `docker save` OCI output.
func (s *Images) loadOCI(ctx context.Context, file string, quiet bool, progress ProgressFunc) ([]loadedImage, error) {
	dir, err := os.MkdirTemp(s.db.store.tmp, "load-oci-")
	if err != nil {
		return nil, fmt.Errorf("load: %w", err)
	}
	defer os.RemoveAll(dir)
	f, err := os.Open(file)
	if err != nil {
		return nil, fmt.Errorf("load: %w", err)
	}
	err = archive.Untar(f, dir, &archive.TarOptions{NoLchown: true})
	f.Close()
	if err != nil {
		return nil, invalidf("invalid OCI archive: %w", err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("load: %w", err)
	}
	defer root.Close()
	b, err := root.ReadFile(ocispec.ImageIndexFile)
	if err != nil {
		return nil, invalidf("invalid OCI archive: %w", err)
	}
	var index ocispec.Index
	if err := json.Unmarshal(b, &index); err != nil {
		return nil, invalidf("invalid OCI archive: index.json: %w", err)
	}
	rd := layout.NewReaderWithRoot(root)
	var out []loadedImage
	for i, desc := range index.Manifests {
		ref, err := rd.NewIndexReference(dir, i)
		if err != nil {
			return nil, invalidf("invalid OCI archive: %w", err)
		}
		id, err := s.copyIn(ctx, ref, quiet, progress)
		if err != nil {
			return nil, err
		}
		l := loadedImage{id: id}
		name := desc.Annotations["io.containerd.image.name"]
		if name == "" {
			name = desc.Annotations[ocispec.AnnotationRefName]
		}
		if named, err := reference.ParseNormalizedNamed(name); err == nil && name != "" {
			if _, tagged := named.(reference.NamedTagged); tagged || desc.Annotations["io.containerd.image.name"] != "" {
				l.tags = append(l.tags, reference.TagNameOnly(named))
			}
		}
		out = append(out, l)
	}
	if len(out) == 0 {
		return nil, invalidf("invalid OCI archive: index.json lists no image")
	}
	return out, nil
}

// copyIn copies the image src names into the store and returns its ID, the
// digest of its config (for an image list, of the host platform's
// instance).
func (s *Images) copyIn(ctx context.Context, src types.ImageReference, quiet bool, progress ProgressFunc) (string, error) {
	id, err := configID(ctx, s.db.sys, src)
	if err != nil {
		return "", err
	}
	dest, err := s.db.storeRef(id)
	if err != nil {
		return "", err
	}
	opts := &copy.Options{SourceCtx: s.db.sys, DestinationCtx: s.db.sys}
	if !quiet {
		ch := make(chan types.ProgressProperties)
		done := make(chan struct{})
		go func() {
			defer close(done)
			for p := range ch {
				progress(Progress{ID: shortID(p.Artifact.Digest.Encoded()), Action: "Loading layer",
					Current: int64(p.Offset), Total: p.Artifact.Size})
			}
		}()
		defer func() { close(ch); <-done }()
		opts.Progress, opts.ProgressInterval = ch, progressInterval
	}
	if _, err := copy.Image(ctx, s.db.policy, dest, src, opts); err != nil {
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		return "", invalidf("load image %s: %w", shortID(id), err)
	}
	return id, nil
}

// configID returns the hex digest of the config of the image ref names,
// the ID it gets in the store.
func configID(ctx context.Context, sys *types.SystemContext, ref types.ImageReference) (string, error) {
	src, err := ref.NewImageSource(ctx, sys)
	if err != nil {
		return "", invalidf("invalid image archive: %w", err)
	}
	defer src.Close()
	raw, mt, err := src.GetManifest(ctx, nil)
	if err != nil {
		return "", invalidf("invalid image archive: %w", err)
	}
	var instance *digest.Digest
	if manifest.MIMETypeIsMultiImage(mt) {
		list, err := manifest.ListFromBlob(raw, mt)
		if err != nil {
			return "", invalidf("invalid image archive: %w", err)
		}
		d, err := list.ChooseInstance(sys)
		if err != nil {
			return "", invalidf("invalid image archive: %w", err)
		}
		instance = &d
	}
	img, err := image.FromUnparsedImage(ctx, sys, image.UnparsedInstance(src, instance))
	if err != nil {
		return "", invalidf("invalid image archive: %w", err)
	}
	d := img.ConfigInfo().Digest
	if d.Validate() != nil || d.Algorithm() != digest.SHA256 {
		return "", invalidf("invalid image archive: config digest %q is not sha256", d)
	}
	return d.Encoded(), nil
}

// spool copies an image archive from r into a temporary file (see
// spoolTar) and tells which kind it is.
func (s *Images) spool(r io.Reader, pattern string) (string, archiveKind, error) {
	sp, err := s.spoolTar(r, pattern, false)
	if err != nil {
		return "", 0, err
	}
	var kind archiveKind
	switch {
	case len(sp.names) == 0:
		err = invalidf("invalid archive: empty, or not a tar archive")
	case slices.Contains(sp.names, "manifest.json"):
		kind = dockerArchive
		err = checkDockerManifest(sp.manifest, sp.names)
	case slices.Contains(sp.names, ocispec.ImageIndexFile):
		kind = ociArchive
	default:
		err = invalidf("invalid archive: no manifest.json (docker-archive) or index.json (OCI archive) in it")
	}
	if err != nil {
		os.Remove(sp.name)
		return "", 0, err
	}
	return sp.name, kind, nil
}

// tarNames reads a tar stream to its end and returns its entry names,
// cleaned and relative, and the content of manifest.json if any; a stream that is no whole tar is
// ErrInvalidArgument.
func tarNames(r io.Reader) (names []string, manifestJSON []byte, err error) {
	tr := tar.NewReader(r)
	var manifest bytes.Buffer
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return names, manifest.Bytes(), nil
		}
		if err != nil {
			return nil, nil, invalidf("invalid archive: %w", tarError(err))
		}
		name := path.Clean("/" + hdr.Name)[1:]
		names = append(names, name)
		var dst io.Writer = io.Discard
		if name == "manifest.json" && hdr.Size <= maxManifestSize {
			dst = &manifest
		}
		if _, err := io.Copy(dst, tr); err != nil {
			return nil, nil, invalidf("invalid archive: %w", tarError(err))
		}
	}
}

// maxManifestSize bounds the manifest.json spool keeps to check it.
const maxManifestSize = 4 << 20

// checkDockerManifest refuses a docker-archive whose manifest.json names a
// file the archive does not hold, before anything is stored.
func checkDockerManifest(manifestJSON []byte, names []string) error {
	var items []struct {
		Config string
		Layers []string
	}
	if err := json.Unmarshal(manifestJSON, &items); err != nil {
		return invalidf("invalid docker-archive: manifest.json: %w", err)
	}
	if len(items) == 0 {
		return invalidf("invalid docker-archive: manifest.json lists no image")
	}
	for _, it := range items {
		for _, f := range append([]string{it.Config}, it.Layers...) {
			if !slices.Contains(names, path.Clean("/" + f)[1:]) {
				return invalidf("invalid docker-archive: manifest.json names %q, which is not in the archive", f)
			}
		}
	}
	return nil
}

func bufioReader(r io.Reader) *bufio.Reader { return bufio.NewReaderSize(r, 64<<10) }

func bufioWriter(w io.Writer) *bufio.Writer { return bufio.NewWriterSize(w, 1<<20) }

// tarError names a truncated archive as such.
func tarError(err error) error {
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return errors.New("unexpected EOF: the archive is truncated")
	}
	return err
}

// storeSnapshot is the set of images and layers before an operation.
type storeSnapshot struct {
	images, layers map[string]bool
}

// snapshot records the images and layers now in the store.
func (s *Images) snapshot() (storeSnapshot, error) {
	snap := storeSnapshot{images: map[string]bool{}, layers: map[string]bool{}}
	imgs, err := s.db.store.cs.Images()
	if err != nil {
		return snap, fmt.Errorf("list images: %w", err)
	}
	for _, i := range imgs {
		snap.images[i.ID] = true
	}
	layers, err := s.db.store.cs.Layers()
	if err != nil {
		return snap, fmt.Errorf("list layers: %w", err)
	}
	for _, l := range layers {
		snap.layers[l.ID] = true
	}
	return snap, nil
}

// rollback removes the images and the unused layers that appeared since
// snap. Operations that add layers hold writeMu, so nothing else adds
// any meanwhile.
func (s *Images) rollback(snap storeSnapshot) {
	cs := s.db.store.cs
	if imgs, err := cs.Images(); err == nil {
		for _, i := range imgs {
			if !snap.images[i.ID] {
				if _, err := cs.DeleteImage(i.ID, true); err != nil {
					s.log.Warn("remove image of failed operation", zap.String("image", i.ID), zap.Error(err))
				}
				s.db.forget(i.ID)
			}
		}
	}
	// Remove new layers top down: a layer goes once nothing stands on it.
	for {
		layers, err := cs.Layers()
		if err != nil {
			s.log.Warn("list layers", zap.Error(err))
			return
		}
		parents := map[string]bool{}
		for _, l := range layers {
			parents[l.Parent] = true
		}
		removed := 0
		for _, l := range layers {
			if snap.layers[l.ID] || parents[l.ID] {
				continue
			}
			if err := cs.DeleteLayer(l.ID); err != nil {
				s.log.Warn("remove layer of failed operation", zap.String("layer", l.ID), zap.Error(err))
				continue
			}
			removed++
		}
		if removed == 0 {
			return
		}
	}
}

// Save is GET /images/get: it writes the images names resolve to as one
// docker-archive to w, streaming. A name without tag or digest that is a
// repository saves all of its tags; an ID or ID prefix saves the image
// without tags, as dockerd. Unknown names fail before anything is written.
func (s *Images) Save(ctx context.Context, names []string, w io.Writer) error {
	type item struct {
		img  *Image
		tags []dref.NamedTagged
	}
	var items []*item
	byID := map[string]*item{}
	add := func(img *Image, tag reference.Named) error {
		it, ok := byID[img.ID]
		if !ok {
			it = &item{img: img}
			byID[img.ID] = it
			items = append(items, it)
		}
		if tag == nil {
			return nil
		}
		if _, ok := tag.(reference.NamedTagged); !ok {
			return nil // digest references are not kept in a docker-archive
		}
		t, err := dref.ParseNormalizedNamed(tag.String())
		if err != nil {
			return invalid(err)
		}
		nt, _ := t.(dref.NamedTagged)
		for _, have := range it.tags {
			if have.String() == nt.String() {
				return nil
			}
		}
		it.tags = append(it.tags, nt)
		return nil
	}
	if len(names) == 0 {
		return invalidf("no image names given")
	}
	all, err := s.db.List(ctx)
	if err != nil {
		return err
	}
	for _, name := range names {
		if named, err := reference.ParseNormalizedNamed(name); err == nil && reference.IsNameOnly(named) {
			found := false
			for _, img := range all {
				for _, ref := range ImageRefs(img) {
					if _, ok := ref.(reference.NamedTagged); ok && ref.Name() == named.Name() {
						found = true
						if err := add(img, ref); err != nil {
							return err
						}
					}
				}
			}
			if found {
				continue
			}
		}
		img, named, err := s.refs.Resolve(ctx, name)
		if err != nil {
			return err
		}
		if err := add(img, named); err != nil {
			return err
		}
	}

	pr, pw, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("save: %w", err)
	}
	defer pr.Close()
	// The archive writer streams to a non-regular file; the pipe's write
	// end, reopened by path, is one.
	wr, err := dockerarchive.NewWriter(s.db.sys, fmt.Sprintf("/proc/self/fd/%d", pw.Fd()))
	pw.Close()
	if err != nil {
		return fmt.Errorf("save: %w", err)
	}
	copied := make(chan error, 1)
	go func() {
		_, err := io.Copy(w, pr)
		pr.Close() // a failed client write fails the archive writer too
		copied <- err
	}()
	werr := func() error {
		for _, it := range items {
			src, err := s.db.storeRef(it.img.ID)
			if err != nil {
				return err
			}
			// One copy per image, with all its tags: c/image's archive
			// writer loses the config of an image copied twice.
			var first dref.NamedTagged
			sys := *s.db.sys
			if len(it.tags) > 0 {
				first, sys.DockerArchiveAdditionalTags = it.tags[0], it.tags[1:]
			}
			d, err := wr.NewReference(first)
			if err != nil {
				return err
			}
			if _, err := copy.Image(ctx, s.db.policy, d, src, &copy.Options{SourceCtx: s.db.sys, DestinationCtx: &sys}); err != nil {
				return fmt.Errorf("save %s: %w", shortID(it.img.ID), err)
			}
		}
		return nil
	}()
	if cerr := wr.Close(); werr == nil && cerr != nil {
		werr = fmt.Errorf("save: %w", cerr)
	}
	cerr := <-copied
	if werr != nil {
		if cerr != nil {
			return fmt.Errorf("save: %w", cerr)
		}
		return werr
	}
	if cerr != nil {
		return fmt.Errorf("save: %w", cerr)
	}
	for _, it := range items {
		s.event(events.ActionSave, it.img.FullID(), it.img.FullID(), it.img.Labels())
	}
	return nil
}
