package storage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"time"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/opencontainers/go-digest"
	"go.podman.io/image/v5/image"
	"go.podman.io/image/v5/manifest"
	"go.podman.io/image/v5/signature"
	istorage "go.podman.io/image/v5/storage"
	"go.podman.io/image/v5/types"
	cstorage "go.podman.io/storage"
)

// Image is one image of the store, as the image service reads it.
type Image struct {
	// ID is the image ID: the hex sha256 of its config, without "sha256:".
	ID string
	// Names are the image's references as stored, normalised
	// ("docker.io/library/busybox:latest", "docker.io/library/app@sha256:…").
	Names []string
	// TopLayer is the store's ID of the image's top layer ("" for an image
	// without layers).
	TopLayer string
	// Layers are the store's IDs of its layers, base first.
	Layers []string
	// Digest is the digest of the image's manifest.
	Digest digest.Digest
	// ManifestType is the manifest's media type; Manifest its bytes.
	ManifestType string
	Manifest     []byte
	// ConfigBlob is the image config as stored (Docker/OCI image JSON);
	// Config is it parsed.
	ConfigBlob []byte
	Config     *dockerspec.DockerOCIImage
	// Comment, DockerVersion and Parent are the config's Docker-only
	// fields ("comment", "docker_version", "parent").
	Comment, DockerVersion, Parent string
	// Created is the config's creation time, the zero time when absent.
	Created time.Time
	// Size is the image's size in bytes: the sum of its layers'
	// uncompressed sizes, as the store records them.
	Size int64
	// LastTagTime is when a tag was last added to the image by the
	// daemon (zero if never).
	LastTagTime time.Time
}

// FullID returns the ID in its API form, "sha256:<hex>".
func (img *Image) FullID() string { return "sha256:" + img.ID }

// Labels returns the config's labels (nil when none).
func (img *Image) Labels() map[string]string { return img.Config.Config.Labels }

// imageMeta is what never changes for an image ID: config, manifest,
// layers and size, cached so listing does not re-read them.
type imageMeta struct {
	digest       digest.Digest
	manifestType string
	manifest     []byte
	configBlob   []byte
	config       *dockerspec.DockerOCIImage
	extra        configExtra
	created      time.Time
	layers       []string
	size         int64
}

// configExtra are the Docker-only fields of an image config.
type configExtra struct {
	Comment       string `json:"comment,omitempty"`
	DockerVersion string `json:"docker_version,omitempty"`
	Parent        string `json:"parent,omitempty"`
}

// lastTagKey is the image big-data key holding the time the daemon last
// tagged the image (RFC 3339).
const lastTagKey = "wharfd-last-tag-time"

// ImageDB is stage 3.14's image store: the images of the Store with their
// configs, manifests, history and sizes. Image records and layers are the
// store's; ImageDB caches what is immutable per image ID.
type ImageDB struct {
	store  *Store
	sys    *types.SystemContext
	policy *signature.PolicyContext

	mu   sync.Mutex
	meta map[string]*imageMeta
}

// NewImageDB is stage 3.14 imagedb.
func NewImageDB(s *Store) (*ImageDB, error) {
	policy, err := signature.NewPolicyContext(&signature.Policy{
		Default: []signature.PolicyRequirement{signature.NewPRInsecureAcceptAnything()},
	})
	if err != nil {
		return nil, fmt.Errorf("image policy: %w", err)
	}
	return &ImageDB{
		store: s,
		sys: &types.SystemContext{
			BigFilesTemporaryDir: s.tmp,
			// c/image's blob cache would default to /var/lib/containers.
			BlobInfoCacheDir: filepath.Join(s.Root(), "cache"),
		},
		policy: policy,
		meta:   map[string]*imageMeta{},
	}, nil
}

// Store returns the store the images live in.
func (db *ImageDB) Store() *Store { return db.store }

// List returns every image of the store, newest first.
func (db *ImageDB) List(ctx context.Context) ([]*Image, error) {
	imgs, err := db.store.cs.Images()
	if err != nil {
		return nil, fmt.Errorf("list images: %w", err)
	}
	out := make([]*Image, 0, len(imgs))
	for i := range imgs {
		img, err := db.image(ctx, &imgs[i])
		if errors.Is(err, cstorage.ErrImageUnknown) || errors.Is(err, cstorage.ErrLayerUnknown) {
			continue // deleted meanwhile
		}
		if err != nil {
			return nil, err
		}
		out = append(out, img)
	}
	slices.SortStableFunc(out, func(a, b *Image) int { return b.Created.Compare(a.Created) })
	return out, nil
}

// Get returns the image with the full hex ID id, or NoSuchImageError.
func (db *ImageDB) Get(ctx context.Context, id string) (*Image, error) {
	ci, err := db.store.cs.Image(id)
	if errors.Is(err, cstorage.ErrImageUnknown) {
		return nil, NoSuchImageError{Name: id}
	}
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", id, err)
	}
	return db.image(ctx, ci)
}

// image builds the Image of a store record, reading its metadata once.
func (db *ImageDB) image(ctx context.Context, ci *cstorage.Image) (*Image, error) {
	m, err := db.metadata(ctx, ci)
	if err != nil {
		return nil, err
	}
	img := &Image{
		ID:            ci.ID,
		Names:         slices.Clone(ci.Names),
		TopLayer:      ci.TopLayer,
		Layers:        m.layers,
		Digest:        m.digest,
		ManifestType:  m.manifestType,
		Manifest:      m.manifest,
		ConfigBlob:    m.configBlob,
		Config:        m.config,
		Comment:       m.extra.Comment,
		DockerVersion: m.extra.DockerVersion,
		Parent:        m.extra.Parent,
		Created:       m.created,
		Size:          m.size,
	}
	if slices.Contains(ci.BigDataNames, lastTagKey) {
		if b, err := db.store.cs.ImageBigData(ci.ID, lastTagKey); err == nil {
			img.LastTagTime, _ = time.Parse(time.RFC3339Nano, string(b))
		}
	}
	return img, nil
}

// metadata returns the cached metadata of the image, reading config,
// manifest and layer chain through the containers-storage transport the
// first time.
func (db *ImageDB) metadata(ctx context.Context, ci *cstorage.Image) (*imageMeta, error) {
	db.mu.Lock()
	m, ok := db.meta[ci.ID]
	db.mu.Unlock()
	if ok {
		return m, nil
	}
	ref, err := istorage.Transport.NewStoreReference(db.store.cs, nil, ci.ID)
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", ci.ID, err)
	}
	src, err := ref.NewImageSource(ctx, db.sys)
	if err != nil {
		return nil, fmt.Errorf("open image %s: %w", ci.ID, err)
	}
	defer src.Close()
	img, err := image.FromUnparsedImage(ctx, db.sys, image.UnparsedInstance(src, nil))
	if err != nil {
		return nil, fmt.Errorf("read image %s: %w", ci.ID, err)
	}
	m = &imageMeta{}
	m.manifest, m.manifestType, err = img.Manifest(ctx)
	if err != nil {
		return nil, fmt.Errorf("image %s manifest: %w", ci.ID, err)
	}
	if m.digest, err = manifest.Digest(m.manifest); err != nil {
		return nil, fmt.Errorf("image %s manifest: %w", ci.ID, err)
	}
	if m.configBlob, err = img.ConfigBlob(ctx); err != nil {
		return nil, fmt.Errorf("image %s config: %w", ci.ID, err)
	}
	m.config = &dockerspec.DockerOCIImage{}
	if err := json.Unmarshal(m.configBlob, m.config); err != nil {
		return nil, fmt.Errorf("image %s config: %w", ci.ID, err)
	}
	_ = json.Unmarshal(m.configBlob, &m.extra) // same JSON; cannot fail where the above did not
	if m.config.Created != nil {
		m.created = *m.config.Created
	}
	for id := ci.TopLayer; id != ""; {
		l, err := db.store.cs.Layer(id)
		if err != nil {
			return nil, fmt.Errorf("image %s layer %s: %w", ci.ID, id, err)
		}
		m.layers = append(m.layers, l.ID)
		size := l.UncompressedSize
		if size <= 0 {
			if size, err = db.store.cs.DiffSize(l.Parent, l.ID); err != nil {
				return nil, fmt.Errorf("image %s layer %s size: %w", ci.ID, id, err)
			}
		}
		m.size += size
		id = l.Parent
	}
	slices.Reverse(m.layers)
	db.mu.Lock()
	db.meta[ci.ID] = m
	db.mu.Unlock()
	return m, nil
}

// forget drops the cached metadata of a deleted image.
func (db *ImageDB) forget(id string) {
	db.mu.Lock()
	delete(db.meta, id)
	db.mu.Unlock()
}

// storeRef returns the containers-storage transport reference of the image
// with hex ID id.
func (db *ImageDB) storeRef(id string) (types.ImageReference, error) {
	return istorage.Transport.NewStoreReference(db.store.cs, nil, id)
}
