package storage

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"
	cstorage "go.podman.io/storage"
)

// References is stage 3.19's reference store: tags ("busybox:latest") and
// digests ("busybox@sha256:…") mapped to image IDs.
//
// The mapping lives in the image records of the store, as their Names:
// each name is the fully normalised reference
// ("docker.io/library/busybox:latest"). The store keeps a name on at most
// one image, moves it atomically when another image takes it, and saves it
// under its own lock together with the image, so tags cannot point at
// images that do not exist and no second file can drift from the store.
type References struct {
	db *ImageDB
	// mu serialises tag changes, so that "who held this tag before" and
	// the move are one step.
	mu sync.Mutex
}

// NewReferences is stage 3.19 reference-store.
func NewReferences(db *ImageDB) *References { return &References{db: db} }

// hexPrefix matches what may be an image ID or a prefix of one.
var hexPrefix = regexp.MustCompile(`^[a-f0-9]{1,64}$`)

// ParseNamed parses a reference as the docker CLI names images and
// normalises it: "busybox" is docker.io/library/busybox. An invalid
// reference is errdefs.ErrInvalidArgument with distribution/reference's
// message, which starts "invalid reference format".
func ParseNamed(s string) (reference.Named, error) {
	named, err := reference.ParseNormalizedNamed(s)
	if err != nil {
		return nil, invalid(err)
	}
	return named, nil
}

// Familiar returns the reference as dockerd displays it: "busybox:latest",
// "myrepo/app:1", "127.0.0.1:5000/app@sha256:…".
func Familiar(ref reference.Named) string { return reference.FamiliarString(ref) }

// Resolve finds the image refOrID names: a reference (a missing tag means
// "latest"), a full ID with or without "sha256:", or a unique ID prefix,
// in dockerd's order. It returns the image and, when a reference was
// given, that reference with its tag filled in. Unknown images are
// NoSuchImageError; a malformed reference is errdefs.ErrInvalidArgument.
func (r *References) Resolve(ctx context.Context, refOrID string) (*Image, reference.Named, error) {
	if refOrID == "" {
		return nil, nil, NoSuchImageError{Name: refOrID}
	}
	if d, err := digest.Parse(refOrID); err == nil {
		img, err := r.db.Get(ctx, d.Encoded())
		if errors.As(err, new(NoSuchImageError)) {
			return nil, nil, NoSuchImageError{Name: refOrID}
		}
		return img, nil, err
	}
	ref, err := reference.ParseAnyReference(refOrID)
	if err != nil {
		return nil, nil, invalid(err)
	}
	named, ok := ref.(reference.Named)
	if !ok {
		// A bare 64-hex ID.
		d, _ := ref.(reference.Digested)
		img, err := r.db.Get(ctx, d.Digest().Encoded())
		if errors.As(err, new(NoSuchImageError)) {
			return nil, nil, NoSuchImageError{Name: refOrID}
		}
		return img, nil, err
	}
	named = reference.TagNameOnly(named)
	if img, err := r.byName(ctx, named.String()); err == nil || !errors.As(err, new(NoSuchImageError)) {
		return img, named, err
	}
	if hexPrefix.MatchString(refOrID) {
		if img, err := r.byPrefix(ctx, refOrID); err == nil || !errors.As(err, new(NoSuchImageError)) {
			return img, nil, err
		}
	}
	return nil, nil, NoSuchImageError{Name: refOrID}
}

// byName returns the image holding the normalised name.
func (r *References) byName(ctx context.Context, name string) (*Image, error) {
	ci, err := r.db.store.cs.Image(name)
	if errors.Is(err, cstorage.ErrImageUnknown) || (err == nil && !slices.Contains(ci.Names, name)) {
		// The store also matches IDs and ID prefixes; only names count here.
		return nil, NoSuchImageError{Name: name}
	}
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", name, err)
	}
	return r.db.image(ctx, ci)
}

// byPrefix returns the one image whose ID starts with prefix; none or
// several is NoSuchImageError, as dockerd.
func (r *References) byPrefix(ctx context.Context, prefix string) (*Image, error) {
	imgs, err := r.db.store.cs.Images()
	if err != nil {
		return nil, fmt.Errorf("list images: %w", err)
	}
	var found *cstorage.Image
	for i := range imgs {
		if strings.HasPrefix(imgs[i].ID, prefix) {
			if found != nil {
				return nil, NoSuchImageError{Name: prefix}
			}
			found = &imgs[i]
		}
	}
	if found == nil {
		return nil, NoSuchImageError{Name: prefix}
	}
	return r.db.image(ctx, found)
}

// Owner returns the ID of the image ref points at, "" when none.
func (r *References) Owner(ref reference.Named) (string, error) {
	name := reference.TagNameOnly(ref).String()
	ci, err := r.db.store.cs.Image(name)
	if errors.Is(err, cstorage.ErrImageUnknown) || (err == nil && !slices.Contains(ci.Names, name)) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("image %s: %w", name, err)
	}
	return ci.ID, nil
}

// Tag points ref (a missing tag meaning "latest") at the image with hex ID
// id, taking it from the image that held it, whose ID it returns ("" when
// none or the same image). A digest reference must carry a digest of the
// image's manifest, and a tag may not be named "sha256", as dockerd.
func (r *References) Tag(id string, ref reference.Named) (previous string, err error) {
	ref = reference.TagNameOnly(ref)
	if reference.FamiliarName(ref) == string(digest.Canonical) {
		return "", invalidf("refusing to create an ambiguous tag using digest algorithm as name")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	prev, err := r.Owner(ref)
	if err != nil {
		return "", err
	}
	if err := r.db.store.cs.AddNames(id, []string{ref.String()}); err != nil {
		if errors.Is(err, cstorage.ErrImageUnknown) {
			return "", NoSuchImageError{Name: id}
		}
		return "", fmt.Errorf("tag %s: %w", Familiar(ref), err)
	}
	now := time.Now().UTC().Format(time.RFC3339Nano)
	if err := r.db.store.cs.SetImageBigData(id, lastTagKey, []byte(now), nil); err != nil {
		return "", fmt.Errorf("tag %s: %w", Familiar(ref), err)
	}
	if prev == id {
		prev = ""
	}
	return prev, nil
}

// Untag removes ref (a missing tag meaning "latest") from the image that
// holds it and returns that image's ID, "" when no image held it.
func (r *References) Untag(ref reference.Named) (string, error) {
	ref = reference.TagNameOnly(ref)
	r.mu.Lock()
	defer r.mu.Unlock()
	id, err := r.Owner(ref)
	if err != nil || id == "" {
		return "", err
	}
	if err := r.db.store.cs.RemoveNames(id, []string{ref.String()}); err != nil {
		return "", fmt.Errorf("untag %s: %w", Familiar(ref), err)
	}
	return id, nil
}

// ImageRefs returns the parsed references of img, in the order stored;
// names that do not parse (written by another tool) are left out.
func ImageRefs(img *Image) []reference.Named {
	var refs []reference.Named
	for _, n := range img.Names {
		if named, err := reference.ParseNormalizedNamed(n); err == nil {
			refs = append(refs, named)
		}
	}
	return refs
}

// RepoTags and RepoDigests return img's tags and digest references as
// dockerd displays them ("busybox:latest", "busybox@sha256:…").
func RepoTags(img *Image) []string {
	tags := []string{}
	for _, ref := range ImageRefs(img) {
		if _, ok := ref.(reference.NamedTagged); ok {
			tags = append(tags, Familiar(ref))
		}
	}
	slices.Sort(tags) // dockerd lists references in lexical order
	return tags
}

// RepoDigests returns img's digest references as dockerd displays them.
func RepoDigests(img *Image) []string {
	digests := []string{}
	for _, ref := range ImageRefs(img) {
		if _, ok := ref.(reference.Canonical); ok {
			digests = append(digests, Familiar(ref))
		}
	}
	slices.Sort(digests)
	return digests
}
