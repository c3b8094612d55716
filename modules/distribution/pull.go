package distribution

import (
	"context"
	"fmt"
	"io"
	goruntime "runtime"
	"sync"
	"time"

	"github.com/containerd/errdefs"
	"github.com/distribution/reference"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/jsonstream"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"go.podman.io/image/v5/docker"
	"go.podman.io/image/v5/manifest"
	"go.podman.io/image/v5/types"
	cstorage "go.podman.io/storage"
	"go.uber.org/zap"

	"github.com/wharfd/wharfd/modules/registry"
	"github.com/wharfd/wharfd/modules/storage"
)

// maxConfigSize bounds the image config a pull reads into memory.
const maxConfigSize = 16 << 20

// PullOptions describe one pull.
type PullOptions struct {
	// Ref is the image, normalised ("docker.io/library/busybox:latest",
	// "127.0.0.1:5000/app@sha256:…"); a name alone means its latest tag.
	Ref reference.Named
	// Platform chooses the instance of a manifest list; nil is this
	// host's.
	Platform *ocispec.Platform
	// Auth are the client's credentials for Ref's registry; nil is
	// anonymous.
	Auth *registry.AuthConfig
	// Progress receives the progress messages, dockerd's, from one
	// goroutine; it has received them all when Pull returns.
	Progress func(jsonstream.Message)
}

// Pull pulls o.Ref into the store, as dockerd's POST /images/create
// ?fromImage=…: the manifest (a manifest list or OCI index resolved for
// the platform; schema 2 and OCI image manifests), then the layers the
// store lacks, downloaded through the transfers, then the image stored,
// tagged and given its repository digest, and a "pull" event. Progress:
// "<tag>: Pulling from <path>", per layer "Already exists" or "Pulling fs
// layer", "Waiting", "Downloading", "Verifying Checksum", "Download
// complete", "Extracting", "Pull complete", then "Digest: …" and "Status:
// Downloaded newer image for …" or "Status: Image is up to date for …".
//
// Errors before the first message are dockerd's: a repository that does
// not exist or refuses access is NotFound "pull access denied for x,
// repository does not exist or may require 'docker login': …", a missing
// tag NotFound "manifest for x:y not found: manifest unknown: …", no
// instance for the platform NotFound "no matching manifest for …", and an
// unreachable registry an error naming it. A failed or cancelled pull
// stores nothing.
func (s *Service) Pull(ctx context.Context, o PullOptions) error {
	start := time.Now()
	ref := reference.TagNameOnly(o.Ref)
	sys := s.systemContext(ctx, reference.Domain(ref), o.Auth)
	if o.Platform != nil {
		sys.OSChoice, sys.ArchitectureChoice, sys.VariantChoice = o.Platform.OS, o.Platform.Architecture, o.Platform.Variant
	}
	cref, err := docker.ParseReference("//" + ref.String())
	if err != nil {
		return errdefs.ErrInvalidArgument.WithMessage(err.Error())
	}
	src, err := cref.NewImageSource(ctx, sys)
	if err != nil {
		return pullError(ctx, err, ref)
	}
	defer src.Close()
	top, topType, err := src.GetManifest(ctx, nil)
	if err != nil {
		return pullError(ctx, err, ref)
	}
	topDigest, err := manifest.Digest(top)
	if err != nil {
		return fmt.Errorf("manifest of %s: %w", reference.FamiliarString(ref), err)
	}
	inst, instType := top, topType
	if manifest.MIMETypeIsMultiImage(topType) {
		list, err := manifest.ListFromBlob(top, topType)
		if err != nil {
			return errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("manifest list of %s: %v", reference.FamiliarString(ref), err))
		}
		d, err := list.ChooseInstance(sys)
		if err != nil {
			return errdefs.ErrNotFound.WithMessage(fmt.Sprintf("no matching manifest for %s in the manifest list entries", platformString(sys)))
		}
		if inst, instType, err = src.GetManifest(ctx, &d); err != nil {
			return pullError(ctx, err, ref)
		}
	}
	switch instType {
	case manifest.DockerV2Schema1MediaType, manifest.DockerV2Schema1SignedMediaType:
		return errdefs.ErrInvalidArgument.WithMessage("Docker Image Format v1 and Docker Image manifest version 2, schema 1 support has been removed. " +
			"Suggest the author of " + ref.String() + " to upgrade the image to the OCI Format or Docker Image manifest v2, schema 2. " +
			"More information at https://docs.docker.com/go/deprecated-image-specs/")
	case manifest.DockerV2Schema2MediaType, ocispec.MediaTypeImageManifest:
	default:
		return errdefs.ErrInvalidArgument.WithMessage("unsupported media type " + instType)
	}
	m, err := manifest.FromBlob(inst, instType)
	if err != nil {
		return errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("manifest of %s: %v", reference.FamiliarString(ref), err))
	}
	cfgInfo := m.ConfigInfo()
	config, err := readConfig(ctx, src, cfgInfo, s.meta.Cache())
	if err != nil {
		return pullError(ctx, err, ref)
	}

	out := newOutput(o.Progress)
	defer out.close()
	tagOrDigest := ""
	if c, ok := ref.(reference.Canonical); ok {
		tagOrDigest = c.Digest().String()
	} else if t, ok := ref.(reference.Tagged); ok {
		tagOrDigest = t.Tag()
	}
	out.status(tagOrDigest, "Pulling from "+reference.Path(ref))

	cs := s.images.DB().Store().Containers()
	var missing []types.BlobInfo
	seen := map[digest.Digest]bool{}
	for _, l := range m.LayerInfos() {
		if seen[l.Digest] {
			continue
		}
		seen[l.Digest] = true
		if hasLayer(cs, l.Digest) {
			out.status(shortDigest(l.Digest), storage.ActionAlreadyExists)
			continue
		}
		out.status(shortDigest(l.Digest), "Pulling fs layer")
		missing = append(missing, l.BlobInfo)
	}

	staged, release, err := s.download(ctx, src, missing, out)
	defer release()
	if err != nil {
		return err
	}
	downloaded := map[string]bool{}
	for _, b := range missing {
		downloaded[shortDigest(b.Digest)] = true
	}
	sref := &stagedRef{manifest: inst, manifestType: instType, config: config, configDigest: cfgInfo.Digest,
		blobs: staged, remote: src, cache: s.meta.Cache()}
	po := storage.PullOptions{ConfigDigest: cfgInfo.Digest, Progress: func(p storage.Progress) {
		if !downloaded[p.ID] {
			return
		}
		switch p.Action {
		case storage.ActionExtracting:
			out.progress(p.ID, p.Action, p.Current, p.Total)
		default:
			out.status(p.ID, storage.ActionPullComplete)
		}
	}}
	canonical, err := reference.WithDigest(reference.TrimNamed(ref), topDigest)
	if err != nil {
		return err
	}
	po.Canonical = canonical
	if _, ok := ref.(reference.Canonical); !ok {
		po.Tag = ref
	}
	img, changed, err := s.images.PullIn(ctx, sref, po)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return err
	}
	out.line("Digest: " + topDigest.String())
	if changed {
		out.line("Status: Downloaded newer image for " + reference.FamiliarString(ref))
	} else {
		out.line("Status: Image is up to date for " + reference.FamiliarString(ref))
	}
	s.event(events.ActionPull, reference.FamiliarString(ref), img.Labels())
	s.log.Info("pulled", zap.String("ref", reference.FamiliarString(ref)), zap.String("id", img.ID), zap.Int("downloaded", len(missing)), sinceMillis(start))
	return nil
}

// download fetches the blobs through the transfers, reporting their
// progress, and returns their staged paths and a function that releases
// them all. The first failure cancels the rest.
func (s *Service) download(ctx context.Context, src types.ImageSource, blobs []types.BlobInfo, out *output) (map[digest.Digest]string, func(), error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu       sync.Mutex
		paths    = map[digest.Digest]string{}
		releases []func()
		firstErr error
		wg       sync.WaitGroup
	)
	releaseAll := func() {
		mu.Lock()
		defer mu.Unlock()
		for _, r := range releases {
			r()
		}
		releases = nil
	}
	for _, b := range blobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := shortDigest(b.Digest)
			fetch := func(ctx context.Context) (io.ReadCloser, int64, error) {
				return src.GetBlob(ctx, b, s.meta.Cache())
			}
			path, rel, err := s.transfers.Download(ctx, b.Digest, fetch, func(p BlobProgress) {
				if p.Status == StatusDownloading {
					total := p.Total
					if total == 0 && b.Size > 0 {
						total = b.Size
					}
					out.progress(id, p.Status, p.Current, total)
					return
				}
				out.status(id, p.Status)
			})
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if firstErr == nil {
					firstErr = err
					cancel()
				}
				return
			}
			paths[b.Digest] = path
			releases = append(releases, rel)
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return nil, releaseAll, firstErr
	}
	return paths, releaseAll, nil
}

// readConfig reads and checks the image config blob.
func readConfig(ctx context.Context, src types.ImageSource, info types.BlobInfo, cache types.BlobInfoCache) ([]byte, error) {
	rc, _, err := src.GetBlob(ctx, info, cache)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, maxConfigSize+1))
	if err != nil {
		return nil, fmt.Errorf("read image config: %w", err)
	}
	if len(b) > maxConfigSize {
		return nil, errdefs.ErrInvalidArgument.WithMessage("image config is larger than 16 MiB")
	}
	if info.Digest.Validate() != nil || info.Digest.Algorithm().FromBytes(b) != info.Digest {
		return nil, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("image config does not match its digest %s", info.Digest))
	}
	return b, nil
}

// hasLayer reports whether the store holds a layer made from blob d (the
// blob as pulled, or an uncompressed blob of that digest): the store
// reuses it instead of downloading it again.
func hasLayer(cs cstorage.Store, d digest.Digest) bool {
	if l, err := cs.LayersByCompressedDigest(d); err == nil && len(l) > 0 {
		return true
	}
	if l, err := cs.LayersByUncompressedDigest(d); err == nil && len(l) > 0 {
		return true
	}
	return false
}

// platformString is "os/arch[/variant]" of the platform sys chooses.
func platformString(sys *types.SystemContext) string {
	p := sys.OSChoice
	if p == "" {
		p = "linux"
	}
	arch := sys.ArchitectureChoice
	if arch == "" {
		arch = goruntime.GOARCH
	}
	p += "/" + arch
	if sys.VariantChoice != "" {
		p += "/" + sys.VariantChoice
	}
	return p
}
