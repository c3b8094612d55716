package distribution

import (
	"fmt"
	"os"
	"path/filepath"

	"go.podman.io/image/v5/pkg/blobinfocache"
	"go.podman.io/image/v5/types"

	"github.com/wharfd/wharfd/modules/host"
)

// Metadata is stage 3.17's distribution metadata: for each blob, the
// repositories it is known to live in and its compressed and
// uncompressed digests, so that a push does not upload what a registry
// already has and can mount blobs across repositories (dockerd's
// V2Metadata). It is go.podman.io/image's blob info cache, persisted
// under <data-root>/distribution. Repository digests of images
// (RepoDigests) are kept by the reference store, as image names.
type Metadata struct {
	dir   string
	cache types.BlobInfoCache
}

// NewMetadata is stage 3.17 distribution-metadata: the cache under
// <data-root>/distribution (created 0700), opened on each use.
func NewMetadata(root host.DataRoot) (*Metadata, error) {
	return OpenMetadata(filepath.Join(root.Path, "distribution"))
}

// OpenMetadata returns the metadata kept in dir, creating dir.
func OpenMetadata(dir string) (*Metadata, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("distribution metadata: %w", err)
	}
	return &Metadata{dir: dir, cache: blobinfocache.DefaultCache(&types.SystemContext{BlobInfoCacheDir: dir})}, nil
}

// Dir returns the directory of the cache, for a SystemContext's
// BlobInfoCacheDir.
func (m *Metadata) Dir() string { return m.dir }

// Cache returns the blob info cache.
func (m *Metadata) Cache() types.BlobInfoCache { return m.cache }
