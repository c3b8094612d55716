package distribution

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/containerd/errdefs"
	"github.com/distribution/reference"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/jsonstream"
	"github.com/opencontainers/go-digest"
	"go.podman.io/image/v5/copy"
	"go.podman.io/image/v5/docker"
	"go.podman.io/image/v5/manifest"
	istorage "go.podman.io/image/v5/storage"
	"go.podman.io/image/v5/types"
	"go.uber.org/zap"

	"github.com/wharfd/wharfd/modules/registry"
	"github.com/wharfd/wharfd/modules/storage"
)

// PushOptions describe one push.
type PushOptions struct {
	// Ref is the repository, normalised, with the tag to push; a name
	// alone pushes every tag of the repository, as dockerd.
	Ref reference.Named
	// Auth are the client's credentials for Ref's registry; nil is
	// anonymous.
	Auth *registry.AuthConfig
	// Progress receives the progress messages, dockerd's, from one
	// goroutine; it has received them all when Push returns.
	Progress func(jsonstream.Message)
}

// PushResult is the aux message of a pushed tag, as dockerd sends it.
type PushResult struct {
	Tag    string
	Digest string
	Size   int
}

// Push pushes the image(s) of o.Ref to its registry (POST
// /images/{name}/push), as dockerd: "The push refers to repository
// [<name>]", per layer "Preparing", "Pushing" with bytes, "Pushed", or
// "Layer already exists" for blobs the registry has, then "<tag>: digest:
// sha256:… size: N" with an aux {"Tag","Digest","Size"} message, and a
// "push" event. Uploads are bounded daemon-wide by the transfers. The
// pushed digest is recorded as the image's repository digest. A tag that
// is not in the store is NotFound "An image does not exist locally with
// the tag: <name>", before any output; registry errors after that are
// reported in the stream by the caller.
func (s *Service) Push(ctx context.Context, o PushOptions) error {
	tags, err := s.pushTags(ctx, o.Ref)
	if err != nil {
		return err
	}
	out := newOutput(o.Progress)
	defer out.close()
	out.line(fmt.Sprintf("The push refers to repository [%s]", o.Ref.Name()))
	sys := s.systemContext(ctx, reference.Domain(o.Ref), o.Auth)
	for _, tag := range tags {
		if err := s.pushOne(ctx, tag, sys, out); err != nil {
			return err
		}
	}
	return nil
}

// pushTags returns the tags Push pushes for ref.
func (s *Service) pushTags(ctx context.Context, ref reference.Named) ([]reference.NamedTagged, error) {
	if t, ok := ref.(reference.NamedTagged); ok {
		if _, err := s.images.Resolve(ctx, t.String()); err != nil {
			return nil, errdefs.ErrNotFound.WithMessage("An image does not exist locally with the tag: " + reference.FamiliarString(ref))
		}
		return []reference.NamedTagged{t}, nil
	}
	if _, ok := ref.(reference.Digested); ok {
		return nil, errdefs.ErrInvalidArgument.WithMessage("cannot push a digest reference")
	}
	imgs, err := s.images.DB().List(ctx)
	if err != nil {
		return nil, err
	}
	var tags []reference.NamedTagged
	for _, img := range imgs {
		for _, r := range storage.ImageRefs(img) {
			if t, ok := r.(reference.NamedTagged); ok && r.Name() == ref.Name() {
				tags = append(tags, t)
			}
		}
	}
	if len(tags) == 0 {
		return nil, errdefs.ErrNotFound.WithMessage("An image does not exist locally with the tag: " + reference.FamiliarName(ref))
	}
	slices.SortFunc(tags, func(a, b reference.NamedTagged) int {
		if a.Tag() < b.Tag() {
			return -1
		}
		if a.Tag() > b.Tag() {
			return 1
		}
		return 0
	})
	return tags, nil
}

// pushOne pushes one tag.
func (s *Service) pushOne(ctx context.Context, tag reference.NamedTagged, sys *types.SystemContext, out *output) error {
	start := time.Now()
	img, err := s.images.Resolve(ctx, tag.String())
	if err != nil {
		return err
	}
	srcRef, err := istorage.Transport.NewStoreReference(s.images.DB().Store().Containers(), nil, img.ID)
	if err != nil {
		return fmt.Errorf("push %s: %w", reference.FamiliarString(tag), err)
	}
	destRef, err := docker.ParseReference("//" + tag.String())
	if err != nil {
		return errdefs.ErrInvalidArgument.WithMessage(err.Error())
	}
	ch := make(chan types.ProgressProperties)
	done := make(chan struct{})
	cfg := digest.Digest(img.FullID())
	go func() {
		defer close(done)
		for p := range ch {
			if p.Artifact.Digest == cfg {
				continue
			}
			id := shortDigest(p.Artifact.Digest)
			switch p.Event {
			case types.ProgressEventNewArtifact:
				out.status(id, "Preparing")
			case types.ProgressEventRead:
				out.progress(id, "Pushing", int64(p.Offset), p.Artifact.Size)
			case types.ProgressEventDone:
				out.status(id, "Pushed")
			case types.ProgressEventSkipped:
				out.status(id, "Layer already exists")
			}
		}
	}()
	srcSys := &types.SystemContext{BigFilesTemporaryDir: s.transfers.Dir(), BlobInfoCacheDir: s.meta.Dir()}
	man, err := copy.Image(ctx, s.policy, destRef, srcRef, &copy.Options{
		SourceCtx:                     srcSys,
		DestinationCtx:                sys,
		ConcurrentBlobCopiesSemaphore: s.transfers.UploadSemaphore(),
		Progress:                      ch,
		ProgressInterval:              progressEvery,
	})
	close(ch)
	<-done
	if err != nil {
		return pushError(ctx, err)
	}
	d, err := manifest.Digest(man)
	if err != nil {
		return fmt.Errorf("push %s: %w", reference.FamiliarString(tag), err)
	}
	out.line(fmt.Sprintf("%s: digest: %s size: %d", tag.Tag(), d, len(man)))
	aux, err := json.Marshal(PushResult{Tag: tag.Tag(), Digest: d.String(), Size: len(man)})
	if err == nil {
		raw := json.RawMessage(aux)
		out.send(jsonstream.Message{Progress: &jsonstream.Progress{}, Aux: &raw})
	}
	if canonical, err := reference.WithDigest(reference.TrimNamed(tag), d); err == nil {
		if _, err := s.images.References().Tag(img.ID, canonical); err != nil {
			s.log.Warn("repository digest not recorded", zap.String("ref", canonical.String()), zap.Error(err))
		}
	}
	s.event(events.ActionPush, reference.FamiliarString(tag), img.Labels())
	s.log.Info("pushed", zap.String("ref", reference.FamiliarString(tag)), zap.String("digest", d.String()), sinceMillis(start))
	return nil
}
